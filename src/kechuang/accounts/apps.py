from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "kechuang.accounts"
    label = "accounts"
    verbose_name = "账户 / Accounts"

    def ready(self) -> None:
        # Connects the failed-login recorder to django.contrib.auth's signal.
        from kechuang.accounts import logins  # noqa: F401
