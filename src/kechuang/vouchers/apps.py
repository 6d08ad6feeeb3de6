from django.apps import AppConfig


class VouchersConfig(AppConfig):
    name = "kechuang.vouchers"
    label = "vouchers"
    verbose_name = "科技服务券"
