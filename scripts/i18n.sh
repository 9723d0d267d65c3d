#!/usr/bin/env bash
# Extract, update and compile Formflow's message catalogs.
#
#   scripts/i18n.sh            # may be run from anywhere; it works from the repo root
#
# 1. extract every _()/gettext/ngettext/_l/lazy_gettext string from
#    platform/**.py and platform/templates/**.html (see babel.cfg) into
#    platform/translations/messages.pot, keeping source locations
# 2. create the zh_Hans_CN catalog if it is missing, otherwise update it
#    (--no-fuzzy-matching: new strings arrive untranslated, never guessed)
# 3. compile every catalog under platform/translations to messages.mo
#    (the .mo files are committed and shipped as package data)
#
# Idempotent: when the extracted strings have not changed, the .pot, .po and
# .mo files are left byte-for-byte as they were (no POT-Creation-Date churn).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ -x /work/venv/bin/pybabel ]]; then
    PYBABEL=/work/venv/bin/pybabel
elif command -v pybabel >/dev/null 2>&1; then
    PYBABEL="$(command -v pybabel)"
else
    echo "i18n.sh: pybabel not found (pip install Babel)" >&2
    exit 1
fi

TRANSLATIONS=platform/translations
POT="$TRANSLATIONS/messages.pot"
# Babel resolves "zh_CN" to "zh_Hans_CN" (CLDR likely subtags) and Flask-Babel looks the
# catalog up under that name, so the Simplified Chinese catalog lives there.
LOCALES=(zh_Hans_CN)
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' platform/version.py)"

mkdir -p "$TRANSLATIONS"
NEW_POT="$(mktemp "${TMPDIR:-/tmp}/formflow-messages.XXXXXX.pot")"
LOG="$(mktemp "${TMPDIR:-/tmp}/formflow-extract.XXXXXX.log")"
trap 'rm -f "$NEW_POT" "$LOG"' EXIT

# babel.cfg patterns are relative to the input directory ".", i.e. the repo root.
status=0
"$PYBABEL" extract \
    -F babel.cfg \
    -k _l -k lazy_gettext \
    --add-comments=TRANSLATORS: \
    --sort-by-file \
    --project=Formflow \
    --version="${VERSION:-0}" \
    --copyright-holder=Formflow \
    -o "$NEW_POT" \
    . >"$LOG" 2>&1 || status=$?
# Show warnings and errors, not the per-file progress lines.
grep -v -e '^extracting messages from ' -e '^writing PO template file' "$LOG" >&2 || true
if [[ $status -ne 0 ]]; then
    echo "i18n.sh: pybabel extract failed (exit $status)" >&2
    exit "$status"
fi

# Replace the template only when something other than its creation date changed.
strip_date() { grep -v '^"POT-Creation-Date: ' "$1"; }
if [[ -f "$POT" ]] && cmp -s <(strip_date "$POT") <(strip_date "$NEW_POT"); then
    echo "messages.pot unchanged"
else
    cp "$NEW_POT" "$POT"
    echo "wrote $POT"
fi

for locale in "${LOCALES[@]}"; do
    po="$TRANSLATIONS/$locale/LC_MESSAGES/messages.po"
    if [[ -f "$po" ]]; then
        "$PYBABEL" update --no-fuzzy-matching --ignore-pot-creation-date \
            -i "$POT" -d "$TRANSLATIONS" -l "$locale"
    else
        "$PYBABEL" init -i "$POT" -d "$TRANSLATIONS" -l "$locale"
    fi
done

"$PYBABEL" compile --statistics -d "$TRANSLATIONS"

