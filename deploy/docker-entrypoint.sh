#!/bin/sh
# The image's entrypoint. Docker and Kubernetes secrets arrive as files: for every
# variable NAME_FILE in the environment, the file's content (without its trailing
# newline) becomes NAME, so SESSION_SECRET_FILE=/run/secrets/session_secret sets
# SESSION_SECRET. Setting both NAME and NAME_FILE is refused, and so is a file that
# cannot be read: one line, exit 1, like every other configuration error.
set -eu

for name in $(env | sed -n 's/^\([A-Z][A-Z0-9_]*\)_FILE=.*$/\1/p'); do
  eval "file=\${${name}_FILE}"
  eval "given=\${${name}:-}"
  if [ -n "$given" ]; then
    echo "tessera: both $name and ${name}_FILE are set: set only one" >&2
    exit 1
  fi
  if [ ! -r "$file" ]; then
    echo "tessera: ${name}_FILE=$file cannot be read (is the secret mounted?)" >&2
    exit 1
  fi
  value=$(cat "$file")
  export "$name=$value"
  unset "${name}_FILE"
done

exec "$@"
