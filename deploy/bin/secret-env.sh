#!/bin/sh
# Runs a command with secrets taken from files: for each NAME below, NAME_FILE=<path> sets NAME to
# the file's content (trailing newlines removed) and unsets NAME_FILE. The secrets then never sit
# in a Compose file, an image, a unit file or `docker inspect`; the backends read only NAME.
#   usage: secret-env.sh <command> [args...]
# Exit 78 (EX_CONFIG, as the backends use) when a file is unreadable or both NAME and NAME_FILE are set.
set -eu

for name in APP_KEK PGPASSWORD DATABASE_URL POLICE_NEW_PASSWORD; do
  eval "file=\${${name}_FILE:-}"
  [ -n "$file" ] || continue
  eval "direct=\${${name}:-}"
  if [ -n "$direct" ]; then
    echo "secret-env: both $name and ${name}_FILE are set: set only one" >&2
    exit 78
  fi
  if [ ! -r "$file" ]; then
    echo "secret-env: ${name}_FILE: cannot read $file" >&2
    exit 78
  fi
  value=$(cat "$file")
  export "$name=$value"
  unset "${name}_FILE"
done

if [ "$#" -eq 0 ]; then
  echo "usage: secret-env.sh <command> [args...]" >&2
  exit 64
fi
exec "$@"
