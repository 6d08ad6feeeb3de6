from django.apps import AppConfig


class CalculatorConfig(AppConfig):
    name = "kechuang.calculator"
    label = "calculator"
    verbose_name = "政策计算器 / Calculator"
