"""Loading a blueprint: validate every file first, then write it all in one transaction.

A broken blueprint changes nothing, and each problem names its file and JSON pointer.
Loading is idempotent; a newer definition of a form adds a version and leaves records be.
"""
import json
from importlib import resources

from jsonschema import Draft202012Validator
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version
from sqlalchemy import select

from ..extensions import db
from ..forms import catalog, definitions
from ..forms.pointers import pointer, problems
from ..forms.validation import FORMATS
from ..people.models import Team, User
from ..version import __version__
from . import demo, source
from .models import Blueprint

DOCUMENT_KINDS = ("rules", "reports", "dashboards")


class BlueprintError(Exception):
    """A blueprint was refused; ``problems`` is a list of (file, pointer, message)."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__("\n".join(f"{f}{'#' + p if p else ''}: {m}" for f, p, m in problems))


def _meta(name):
    doc = json.loads(resources.files("formflow.blueprints").joinpath(f"metaschemas/{name}.json").read_text("utf-8"))
    return Draft202012Validator(doc, format_checker=FORMATS)


META = {name: _meta(name) for name in ("blueprint", "people", "demo_line", "document")}


class Bundle:
    """A blueprint's parsed, validated contents."""

    def __init__(self, files):
        self.problems = []
        self.manifest = None
        self.forms = {}
        self.people = {"teams": [], "users": []}
        self.documents = []  # (kind, key, body, file)
        self.demo = []  # (file, line number, line dict)
        self._parse(files)

    def problem(self, file, ptr, message):
        self.problems.append((file, ptr, message))

    def _json(self, name, raw):
        try:
            return json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.problem(name, "", "not UTF-8 text")
        except json.JSONDecodeError as err:
            self.problem(name, "", f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}")
        return None

    def _check(self, meta, name, doc, base=()):
        ok = True
        for ptr, message in sorted(problems(META[meta], doc)):
            self.problem(name, pointer(base) + ptr, message)
            ok = False
        return ok

    def _parse(self, files):
        if "blueprint.json" not in files:
            self.problem("blueprint.json", "", "missing: every blueprint needs a blueprint.json")
            return
        manifest = self._json("blueprint.json", files["blueprint.json"])
        if manifest is not None and self._check("blueprint", "blueprint.json", manifest):
            self.manifest = manifest
            try:
                if not version_satisfies(__version__, manifest["requires"]):
                    self.problem("blueprint.json", "/requires",
                                 f"needs Formflow {manifest['requires']}; this is {__version__}")
            except ValueError as err:
                self.problem("blueprint.json", "/requires",
                             f"not a valid version requirement: {manifest['requires']!r} ({err}); write PEP 440 "
                             "specifiers such as '>=0.1.0' or '~=0.1.0'")
        if "people.json" in files:
            people = self._json("people.json", files["people.json"])
            if people is not None and self._check("people", "people.json", people):
                self.people = {"teams": people.get("teams", []), "users": people.get("users", [])}
                self._check_people()
        for name in sorted(files):
            if name.startswith("forms/"):
                if not name.endswith(".json"):
                    self.problem(name, "", "form files end in .json")
                    continue
                doc = self._json(name, files[name])
                if doc is None:
                    continue
                if isinstance(doc, dict) and doc.get("key") in self.forms:
                    self.problem(name, "/key", f"form key {doc['key']!r} is used by another file")
                    continue
                self.forms[doc.get("key") if isinstance(doc, dict) else name] = (name, doc)
        known = catalog.known_form_keys(k for k in self.forms if isinstance(k, str))
        for key, (name, doc) in self.forms.items():
            try:
                definitions.check(doc, known)
            except definitions.DefinitionError as err:
                for ptr, messages in err.errors.items():
                    for m in messages:
                        self.problem(name, ptr, str(m))
        for name in sorted(files):
            kind = name.split("/", 1)[0]
            if kind in DOCUMENT_KINDS and name.endswith(".json"):
                doc = self._json(name, files[name])
                if doc is not None and self._check("document", name, doc):
                    self.documents.append((kind, doc["key"], doc, name))
            elif name.startswith("demo/") and name.endswith(".jsonl"):
                self._parse_demo(name, files[name])

    def _check_people(self):
        teams = {t["key"] for t in self.people["teams"]}
        seen = set()
        for i, user in enumerate(self.people["users"]):
            if user.get("team") and user["team"] not in teams and db.session.scalar(
                    select(Team.id).where(Team.key == user["team"])) is None:
                self.problem("people.json", pointer(["users", i, "team"]), f"no team {user['team']!r}")
            if user["username"] in seen:
                self.problem("people.json", pointer(["users", i, "username"]), "username appears twice")
            seen.add(user["username"])

    def _parse_demo(self, name, raw):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.problem(name, "", "not UTF-8 text")
            return
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as err:
                self.problem(f"{name}:{n}", "", f"invalid JSON: {err.msg}")
                continue
            if self._check("demo_line", f"{name}:{n}", doc):
                self.demo.append((name, n, doc))

    @property
    def key(self):
        return self.manifest["key"]

    def form_order(self):
        return _form_order(self.forms)


def _refuse(file, ptr, message):
    raise BlueprintError([(file, ptr, message)])


def version_satisfies(version, spec):
    """Does ``version`` meet ``spec``, PEP 440 specifiers separated by commas (">=0.1.0, <0.3",
    "~=0.1.0" for 0.1.x)? A bare version ("0.1.0") means exactly that one.

    :raises ValueError: ``spec`` is not a version requirement; the message says why
    """
    clauses = [c.strip() for c in spec.split(",")]
    if not all(clauses):
        raise ValueError("a comparison is missing between two commas")
    try:
        specifiers = SpecifierSet(",".join(c if c[0] in "<>=!~" else "==" + c for c in clauses))
    except InvalidSpecifier as err:
        raise ValueError(str(err)) from None
    return specifiers.contains(Version(version))


def _form_order(forms):
    """Form keys so that a form comes after the forms it references."""
    deps = {k: {p.get("x-reference") for p in doc["schema"]["properties"].values()
                if isinstance(p, dict) and p.get("x-reference") and p.get("x-reference") != k}
            for k, (_, doc) in forms.items()}
    order, done = [], set()

    def visit(k, stack=()):
        if k in done or k not in deps:
            return
        for d in sorted(deps[k] - set(stack)):
            visit(d, (*stack, k))
        done.add(k)
        order.append(k)
    for k in sorted(deps):
        visit(k)
    return order


def load(path, with_demo=False):
    """Load a blueprint folder or zip; returns a summary dict. Raises BlueprintError.

    Everything is validated before anything is written, and written in one transaction.
    """
    try:
        files = source.read(path)
    except source.SourceError as err:
        raise BlueprintError([(str(path), "", str(err))]) from None
    bundle = Bundle(files)
    if bundle.problems:
        raise BlueprintError(bundle.problems)
    try:
        summary = _write(bundle, with_demo)
        db.session.commit()
        return summary
    except BlueprintError:
        db.session.rollback()
        raise
    except Exception:
        db.session.rollback()
        raise


def _write(bundle, with_demo):
    summary = {"key": bundle.key, "version": bundle.manifest["version"], "forms_added": [],
               "forms_unchanged": [], "users_added": [], "documents": 0, "demo_records": 0}
    row = db.session.scalars(select(Blueprint).where(Blueprint.key == bundle.key)).first()
    if row is None:
        db.session.add(Blueprint(key=bundle.key, version=bundle.manifest["version"], manifest=bundle.manifest))
    else:
        row.version, row.manifest = bundle.manifest["version"], bundle.manifest

    teams = {}
    for t in bundle.people["teams"]:
        team = db.session.scalars(select(Team).where(Team.key == t["key"])).first()
        if team is None:
            team = Team(key=t["key"])
            db.session.add(team)
        team.name = t["name"]
        teams[t["key"]] = team
    db.session.flush()
    for u in bundle.people["users"]:
        user = db.session.scalars(select(User).where(User.username == u["username"])).first()
        if user is None:
            user = User(username=u["username"])
            db.session.add(user)
            summary["users_added"].append(u["username"])
            if with_demo and u.get("demo_password"):
                user.set_password(u["demo_password"])
        user.display_name = u["display_name"]
        user.role = u["role"]
        user.skills = u.get("skills", [])
        user.locale = u.get("locale", user.locale)
        if u.get("team"):
            user.team = teams.get(u["team"]) or db.session.scalars(select(Team).where(Team.key == u["team"])).first()
    db.session.flush()

    known = catalog.known_form_keys(bundle.forms)
    for key in _form_order(bundle.forms):
        _, doc = bundle.forms[key]
        _version, created = catalog.define(doc, blueprint_key=bundle.key, known_forms=known)
        (summary["forms_added"] if created else summary["forms_unchanged"]).append(key)

    rule_keys = {key for kind, key, _b, _n in bundle.documents if kind == "rules"}
    order = {"reports": 0, "dashboards": 1, "rules": 2}  # each may name what comes before it
    for kind, key, body, name in sorted(bundle.documents, key=lambda d: order.get(d[0], 3)):
        if kind == "rules":
            from ..workflow import rules
            try:
                rules.save(body, note=f"blueprint {bundle.key} {bundle.manifest['version']}",
                           blueprint_key=bundle.key, known_rules=rule_keys)
            except rules.RuleInvalid as err:
                raise BlueprintError([(name, p, "; ".join(map(str, m))) for p, m in err.errors.items()]) from None
            summary["rules"] = summary.get("rules", 0) + 1
            continue
        if kind in ("reports", "dashboards"):
            from ..reports import compiler, store
            try:
                store.save(body, blueprint_key=bundle.key, kind=kind[:-1])
            except compiler.ReportInvalid as err:
                raise BlueprintError([(name, p, "; ".join(map(str, m))) for p, m in err.errors.items()]) from None
            summary["documents"] += 1
            continue

    if with_demo:
        summary["demo_records"] = demo.write(bundle, _refuse)
    return summary
