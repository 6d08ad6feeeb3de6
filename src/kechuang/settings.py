"""Django settings for kechuang.

Everything that differs between a laptop and production comes from the
environment, and a bad value fails loudly with the variable's name. A fresh
checkout runs with no environment at all: SQLite under the data folder,
DEBUG on only when KECHUANG_DEBUG=True asks for it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent
REPO_DIR = BASE_DIR.parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.getenv(name, default)


def env_bool(name: str, default: str = "False") -> bool:
    value = os.getenv(name, default)
    if value not in ("", "True", "False"):
        raise ImproperlyConfigured(f"Unexpected value {name}={value}, use 'True' or 'False'")
    return value == "True"


def env_int(name: str, default: int) -> int:
    value = os.getenv(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"Unexpected value {name}={value}, use an integer") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


DEBUG = env_bool("KECHUANG_DEBUG", "False")

DATA_DIR = Path(env_str("KECHUANG_DATA_DIR", str(REPO_DIR / "data"))).resolve()


def _secret_key() -> str:
    """KECHUANG_SECRET_KEY, else the key file scripts/serve.sh writes once under
    the data folder, else the development key when DEBUG is on or under pytest."""
    key = env_str("KECHUANG_SECRET_KEY")
    if key:
        return key
    key_file = DATA_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    # Only a developer's machine or the test suite may use the well-known key: in
    # production it would let anyone forge a session cookie.
    if DEBUG or "pytest" in sys.modules:
        return "django-insecure-kechuang-development-key-do-not-use-in-production"
    raise ImproperlyConfigured(
        "KECHUANG_SECRET_KEY is not set (nor "
        f"{key_file}); set it, or KECHUANG_DEBUG=True for development"
    )


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("KECHUANG_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("KECHUANG_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "kechuang.accounts",
    "kechuang.registry",
    # django-ninja: its bundled Swagger UI files for /api/docs (browsers here have no internet).
    "ninja",
    # Background tasks (免申即享 runs): django-tasks with its database backend, so a
    # queued or interrupted run survives a restart on SQLite and PostgreSQL alike.
    "django_tasks",
    "django_tasks_db",
]
# Apps added by other parts of the platform when their package exists, so that
# one settings file serves every stage of the tree.
for _app in ("web", "calculator", "vouchers", "programs", "servicedesk", "reports"):
    if (BASE_DIR / _app / "__init__.py").exists():
        INSTALLED_APPS.append(f"kechuang.{_app}")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Chinese unless the user chose English with the switch (ignores Accept-Language).
    "kechuang.web.middleware.ChineseByDefaultMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "kechuang.urls"
WSGI_APPLICATION = "kechuang.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'kechuang.sqlite3'}",
        conn_max_age=env_int("KECHUANG_DB_CONN_MAX_AGE", 0),
    )
}
if env_str("KECHUANG_TEST_DB_NAME"):
    # Test runs sharing one PostgreSQL server (CI beside a developer's run) must not
    # create and drop the same test database under each other.
    DATABASES["default"]["TEST"] = {"NAME": env_str("KECHUANG_TEST_DB_NAME")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # PostgreSQL's JIT compiles the wide generated SELECTs (the facts row, the
    # compiled policies) for seconds before running them in milliseconds:
    # measured 8 s of JIT for a 0.5 s facts query over 100,000 enterprises.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c jit=off"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A fresh checkout has no data folder yet; SQLite cannot create one.
    if DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web server read while an import or a batch writes; the busy
    # timeout makes a second writer wait instead of failing with "locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# ISO dates in both languages (kechuang/formats): "Nov. 25, 2026" beside "2026-11-25" misleads.
FORMAT_MODULE_PATH = ["kechuang.formats"]
TIME_ZONE = env_str("KECHUANG_TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("KECHUANG_STATIC_ROOT", str(DATA_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # Tests and DEBUG run without collectstatic; production serves the
        # hashed, compressed files whitenoise builds at collectstatic time.
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or "pytest" in sys.modules
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
MEDIA_ROOT = DATA_DIR / "media"

SESSION_COOKIE_HTTPONLY = True
# Signed in staff decide on public money: a session left idle ends (each request renews
# it), and closing the browser ends it too.
SESSION_COOKIE_AGE = 60 * env_int("KECHUANG_SESSION_IDLE_MINUTES", 30)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = False
SESSION_COOKIE_SECURE = env_bool("KECHUANG_SECURE_COOKIES", "False")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

# Large registry uploads are streamed to a temporary file, not held in memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10000

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("KECHUANG_LOG_LEVEL", "WARNING")},
}

# Background tasks: the database backend; `kechuang db_worker` runs them (scripts/serve.sh
# starts one). KECHUANG_TASKS_IMMEDIATE=True runs each task inside the request instead.
TASKS = {
    "default": {
        "BACKEND": (
            "django_tasks.backends.immediate.ImmediateBackend"
            if env_bool("KECHUANG_TASKS_IMMEDIATE", "False")
            else "django_tasks_db.DatabaseBackend"
        )
    }
}

# Mail (免申即享 notices): printed on the console unless a real backend is configured.
EMAIL_BACKEND = env_str("KECHUANG_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("KECHUANG_FROM_EMAIL", "kechuang@localhost")
