"""Formflow's entry point: ``python app.py`` runs the whole product on one machine.

``flask --app app ...`` finds the application object here too (db upgrade, token create,
blueprint load/export/list, queue run).
"""
import argparse
import os
from pathlib import Path

from formflow.factory import create_app

HERE = Path(__file__).resolve().parent
DEFAULT_BLUEPRINT = HERE / "blueprints" / "cardealer"

app = create_app()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run Formflow (SQLite and an in-process queue by default).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--reload", action="store_true", help="restart when code changes (development)")
    parser.add_argument("--no-demo", action="store_true", help="load the blueprint without demo data")
    args = parser.parse_args(argv)

    child = os.environ.get("WERKZEUG_RUN_MAIN") == "true"
    if not child:
        from formflow.setup import prepare
        logins = prepare(app, os.environ.get("FORMFLOW_BLUEPRINT", DEFAULT_BLUEPRINT), demo=not args.no_demo)
        print(f"\n  Formflow is running at http://{args.host}:{args.port}/\n")
        if logins and not args.no_demo:
            print("  Demo logins (username / password):")
            for username, password, name, role in logins:
                print(f"    {username:<10} / {password}   {name} ({role})")
            print()
    # With the reloader, only the serving child runs the consumer, so it starts exactly once.
    if not args.reload or child:
        app.extensions["formflow.queue"].start_consumer()
    app.run(host=args.host, port=args.port, use_reloader=args.reload, threaded=True)


if __name__ == "__main__":
    main()
