#!/usr/bin/env bash
# Translations (Flask-Babel): extract the shop's messages, merge them into each language's catalog, compile.
#   scripts/i18n.sh            extract + update + compile (after changing a translatable string)
#   scripts/i18n.sh compile    compile only (the .mo files are committed; this rebuilds them from the .po)
#   scripts/i18n.sh init LANG  start a new language
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=.venv/bin/pybabel
DIR=shopapp/translations
case "${1:-all}" in
  compile) "$PYBABEL" compile -f -d "$DIR" ;;
  init) "$PYBABEL" init -i "$DIR/messages.pot" -d "$DIR" -l "$2" ;;
  all)
    "$PYBABEL" extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output -o "$DIR/messages.pot" .
    "$PYBABEL" update -i "$DIR/messages.pot" -d "$DIR" --no-fuzzy-matching --ignore-obsolete
    "$PYBABEL" compile -f -d "$DIR"
    ;;
  *) echo "usage: $0 [all|compile|init LANG]" >&2; exit 2 ;;
esac
