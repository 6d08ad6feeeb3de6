"""Code tables of the registry: industries (GB/T 4754-2017), IP types and
their class (工作指引 Ⅰ类/Ⅱ类), certification kinds, and facts windows.

The industry table and its label mapping are data (``data/industries.yaml``),
so a district can extend them without touching code.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml
from django.utils.translation import gettext_lazy, gettext_noop


@cache
def _industries() -> dict:
    text = resources.files("kechuang.registry").joinpath("data/industries.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    label_by_division = {div: label for label, divs in data["labels"].items() for div in divs}
    return {"codes": {str(k): v for k, v in data["codes"].items()}, "labels": label_by_division}


def industry_codes() -> dict[str, str]:
    """Known industry codes → their Chinese name."""
    return _industries()["codes"]


def industry_label(code: str) -> str:
    """The snake_case label the rules read, from a known code's 2-digit division.

    >>> industry_label("6520"), industry_label("1610"), industry_label("3973"), industry_label("83")
    ('software', 'tobacco_manufacturing', 'manufacturing', 'other')
    """
    return _industries()["labels"].get(code[:2], "other")


def industry_labels_by_division() -> dict[str, str]:
    return dict(_industries()["labels"])


# (type, Chinese name, class). Ⅰ类 per 工作指引: 发明专利 (incl. 国防专利),
# 植物新品种, 国家级农作物品种, 国家新药, 国家一级中药保护品种, 集成电路布图设计专有权;
# Ⅱ类: 实用新型, 外观设计, 软件著作权 (never trademarks).
IP_TYPES: tuple[tuple[str, str, str], ...] = (
    ("invention_patent", gettext_noop("发明专利"), "I"),
    ("defense_patent", gettext_noop("国防专利"), "I"),
    ("plant_variety", gettext_noop("植物新品种"), "I"),
    ("national_crop_variety", gettext_noop("国家级农作物品种"), "I"),
    ("national_new_drug", gettext_noop("国家新药"), "I"),
    ("tcm_protected_variety_grade1", gettext_noop("国家一级中药保护品种"), "I"),
    ("ic_layout_design", gettext_noop("集成电路布图设计"), "I"),
    ("utility_model", gettext_noop("实用新型"), "II"),
    ("design_patent", gettext_noop("外观设计"), "II"),
    ("software_copyright", gettext_noop("软件著作权"), "II"),
)
# Names are Chinese (files are imported by them); shown in the page's language.
IP_TYPE_CHOICES = [(code, gettext_lazy(name)) for code, name, _cls in IP_TYPES]
IP_CLASS = {code: cls for code, _name, cls in IP_TYPES}
IP_TYPE_BY_NAME = {name: code for code, name, _cls in IP_TYPES}

CERTIFICATIONS: tuple[tuple[str, str], ...] = (
    ("hte", gettext_noop("高新技术企业")),
    ("tsme", gettext_noop("科技型中小企业")),
    ("little_giant", gettext_noop("科技小巨人企业")),
    ("specialized_sme", gettext_noop("专精特新中小企业")),
    ("specialized_little_giant", gettext_noop("专精特新“小巨人”企业")),
    ("technology_center", gettext_noop("企业技术中心")),
)
CERTIFICATION_CHOICES = [(code, gettext_lazy(name)) for code, name in CERTIFICATIONS]
CERTIFICATION_BY_NAME = {name: code for code, name in CERTIFICATIONS}

PROVINCIAL_OR_HIGHER = ("national", "provincial")
