#!/bin/sh
# Writes .env for `docker compose up`: a copy of .env.example (every setting, empty: the
# defaults) with a new random SESSION_SECRET and POSTGRES_PASSWORD. It never overwrites an
# existing .env (it keeps it and succeeds), so the README's one line can run it every time.
# Edit .env afterwards for anything else (PUBLIC_URL, HTTP_PORT, ADMIN_PASSWORD, …).
#
#   sh deploy/new-env.sh && docker compose up
set -eu
cd "$(dirname "$0")/.."
if [ -e .env ]; then
  echo "new-env: .env exists already: kept as it is" >&2
  exit 0
fi
# Letters and digits only: the password goes into a URL.
random() { LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1"; }
umask 077
sed -e "s/^SESSION_SECRET=\$/SESSION_SECRET=$(random 48)/" \
    -e "s/^POSTGRES_PASSWORD=\$/POSTGRES_PASSWORD=$(random 32)/" \
    .env.example > .env
echo "new-env: wrote .env with a new SESSION_SECRET and POSTGRES_PASSWORD (keep it private; git ignores it)"
