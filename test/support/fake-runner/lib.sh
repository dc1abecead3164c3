# Helpers shared by the fake actions/runner scripts (sourced; ROOT = runner dir).

# Timestamp like the runner's output lines: yyyy-MM-dd HH:mm:ssZ, UTC (a builtin: no fork).
ts() { TZ=UTC printf '%(%Y-%m-%d %H:%M:%S)TZ' -1; }

# cfg KEY DEFAULT: KEY from .fake-runner.override.json, else from .fake-runner.json, else DEFAULT.
# Flat JSON only: string, number or boolean values.
cfg() {
  local f v
  for f in "$ROOT/.fake-runner.override.json" "$ROOT/.fake-runner.json"; do
    [ -f "$f" ] || continue
    v=$(tr -d '\n' < "$f" \
      | grep -o "\"$1\"[[:space:]]*:[[:space:]]*\(\"[^\"]*\"\|[0-9.]\+\|true\|false\)" \
      | head -n 1 | sed -e 's/^[^:]*:[[:space:]]*//' -e 's/^"\(.*\)"$/\1/')
    if [ -n "$v" ]; then printf '%s' "$v"; return; fi
  done
  printf '%s' "$2"
}

# json_str S: S as a JSON string literal.
json_str() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\r'/\\r}; s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# The real scripts refuse root unless RUNNER_ALLOW_RUNASROOT is set (to anything non-empty).
refuse_root() {
  if [ "$(id -u)" -eq 0 ] && [ -z "$RUNNER_ALLOW_RUNASROOT" ]; then
    echo "Must not run with sudo" >&2
    exit 1
  fi
}

# diag FILE COMPONENT MESSAGE: append a line in the style of _diag/*.log.
diag() { printf '[%s INFO %s] %s\n' "$(ts)" "$2" "$3" >> "$1"; }
