"""The application factory."""
import logging
import os
from pathlib import Path

from flask import Flask

from . import config, sqlite
from .extensions import babel, csrf, db, login_manager, migrate

PACKAGE = Path(__file__).parent


def create_app(test_config=None, instance_path=None):
    """Build the app: defaults, then FORMFLOW_* environment variables, then test_config."""
    app = Flask("formflow", root_path=str(PACKAGE),
                instance_path=instance_path or os.environ.get("FORMFLOW_INSTANCE_PATH")
                or str(Path.cwd() / "instance"), instance_relative_config=True)
    app.config.from_mapping(config.defaults(app.instance_path))
    app.config.from_prefixed_env("FORMFLOW")
    if test_config:
        app.config.from_mapping(test_config)
    app.json.ensure_ascii = False  # Chinese stays readable in API responses and JSON editors
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    config.finish(app)
    sqlite.init_app(app)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from . import i18n
    db.init_app(app)
    migrate.init_app(app, db, directory=str(PACKAGE / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    login_manager.login_view = "web.login"
    csrf.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, default_timezone=app.config["TIMEZONE"],
                   default_translation_directories=str(PACKAGE / "translations"))

    from flask_bootstrap import Bootstrap5
    Bootstrap5(app)

    from . import models  # noqa: F401  (every table registered before migrations run)
    from . import workflow
    from .workflow import queue, tasks  # noqa: F401  (tasks declare themselves to the queue)
    queue.init_app(app)
    workflow.init_app(app)

    from . import api, cli, errors, inputs, web
    inputs.init_app(app)  # before the routes: their <int:...> ids use its bounded converter
    errors.init_app(app)
    web.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    return app
