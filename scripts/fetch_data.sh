#!/usr/bin/env bash
# Downloads a MovieLens release from GroupLens into DIR/NAME, checks it, and prints that directory.
#
# Usage: scripts/fetch_data.sh [NAME] [DIR]
#   NAME  ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m or ml-latest-small (the default)
#   DIR   where the release goes (default data/); it lands in DIR/NAME whatever the zip calls it
#   A single argument that is not a NAME is taken as DIR, as this script's first version took it.
#
# Checks, all before anything is moved into DIR/NAME:
#   - ml-latest-small: every file against the SHA-256 sums of the release psrec was evaluated on
#     (the same sums as ../shared/data/SHA256SUMS). GroupLens regenerates "latest" releases, so no
#     zip-level sum is pinned for it.
#   - the other releases: the zip's MD5 against the one GroupLens publishes beside it
#     (https://files.grouplens.org/datasets/movielens/NAME.zip.md5). Those values are pinned in the
#     table below; each was found quoted identically in at least two independent public projects, one
#     of them citing GroupLens's .md5 file. They were not recomputed here (this machine cannot
#     download). MD5 catches a corrupt or truncated download, not a deliberate forgery.
#   - every release: `unzip -t` (each member's CRC-32), then the number of rating lines against the
#     count GroupLens publishes for the release.
# A release whose table entry has MD5 "-" is checked against the .md5 fetched from beside the zip at
# download time instead, and refused if there is none.
#
# Exit status: 0 done (or already there), 1 download or check failed, 2 usage. On failure nothing
# under DIR changes: the download and unpacking happen in DIR/.fetch-NAME.* and are removed.
#
# Environment, for mirrors and tests:
#   PSREC_FETCH_URL_BASE  where NAME.zip is fetched from (default https://files.grouplens.org/datasets/movielens)
#   PSREC_FETCH_CMD       the download command, run as `$PSREC_FETCH_CMD URL FILE` (default: curl)
#   PSREC_FETCH_SUMS      a file of "NAME MD5 RATINGS" lines used instead of the table below
set -euo pipefail

# NAME, the zip's MD5 as GroupLens publishes it (or "-"), and the published number of ratings.
builtin_sums() {
  cat <<'TABLE'
ml-100k 0e33842e24a9c977be4e0107933c0723 100000
ml-1m c4d9eecfca2ab87c1945afe126590906 1000209
ml-10m ce571fd55effeba0271552578f2648bd 10000054
ml-20m cd245b17a1ae2cc31bb14903e1204af3 20000263
ml-25m 6b51fb2759a8657d3bfcbfc42b592ada 25000095
ml-32m d472be332d4daa821edc399621853b57 32000204
ml-latest-small none 100836
TABLE
}

latest_small_sums() {
  cat <<'SUMS'
63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404  README.txt
028a4a1d17751ca9276e0e0718cfc22356350f224a996e1ec348c23274b9209d  links.csv
c47b783f23eb304413307e1bb05335e427737da20ec8d3c0e96335567dd5f3dc  movies.csv
80da8b3393dae325bbba5a31f291a6ba55d8d4f4396de3c456f2c1635b1b70e8  ratings.csv
68eec00a0820c2faa8863a6df7032f13d5899a4462bce9a97213905297ff3d34  tags.csv
SUMS
}

say() { echo "fetch_data: $*" >&2; }
fail() { say "$*"; exit 1; }
usage() { say "$*; usage: fetch_data.sh [NAME] [DIR], NAME one of: $names"; exit 2; }

sums() { if [ -n "${PSREC_FETCH_SUMS:-}" ]; then cat "$PSREC_FETCH_SUMS"; else builtin_sums; fi; }
names=$(builtin_sums | awk '{print $1}' | tr '\n' ' ')

name=ml-latest-small
dest=data
case $# in
  0) ;;
  1) if grep -qx -- "$1" <<<"${names// /$'\n'}"; then name=$1; else dest=$1; fi ;;
  2) name=$1; dest=$2 ;;
  *) usage "too many arguments" ;;
esac
entry=$(sums | awk -v n="$name" '$1 == n {print $2, $3; exit}')
[ -n "$entry" ] || usage "unknown release '$name'"
read -r want_md5 want_ratings <<<"$entry"
base=${PSREC_FETCH_URL_BASE:-https://files.grouplens.org/datasets/movielens}
url="$base/$name.zip"
target="$dest/$name"

download() {
  if [ -n "${PSREC_FETCH_CMD:-}" ]; then
    # Word splitting is wanted: the variable holds a command and its arguments.
    # shellcheck disable=SC2086
    $PSREC_FETCH_CMD "$1" "$2"
  else
    curl -fsSL --retry 3 --connect-timeout 30 -o "$2" "$1"
  fi
}

# The rating file of an unpacked release, whichever layout it uses.
rating_file() {
  local f
  for f in ratings.csv ratings.dat u.data; do
    if [ -f "$1/$f" ]; then echo "$1/$f"; return 0; fi
  done
  return 1
}

# Rating lines in a rating file: every line but a ratings.csv header, a last line without "\n" too.
count_ratings() {
  local lines
  lines=$(awk 'END {print NR}' "$1")
  case $1 in *.csv) lines=$((lines - 1)) ;; esac
  echo "$lines"
}

# An earlier run's result, recognised by the marker it wrote last (ml-latest-small: by its sums).
installed() {
  if [ "$name" = ml-latest-small ] && [ -f "$target/ratings.csv" ] &&
    (cd "$target" && latest_small_sums | sha256sum --quiet -c - >/dev/null 2>&1); then
    return 0
  fi
  [ -f "$target/.psrec-fetch" ] && grep -qx "zip_md5=$want_md5" "$target/.psrec-fetch"
}

if installed; then
  say "$target is already there and checked"
  echo "$target"
  exit 0
fi

mkdir -p "$dest"
tmp=$(mktemp -d "$dest/.fetch-$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say "downloading $url"
download "$url" "$tmp/$name.zip" || fail "could not download $url; put $name in $dest/ by hand or pass --data"

if [ "$want_md5" = - ]; then
  download "$url.md5" "$tmp/$name.zip.md5" ||
    fail "no published checksum at $url.md5, and none is pinned for $name: refusing $url"
  want_md5=$(grep -oE '[0-9a-fA-F]{32}' "$tmp/$name.zip.md5" | head -n 1 | tr 'A-F' 'a-f' || true)
  [ -n "$want_md5" ] || fail "$url.md5 holds no MD5: refusing $url"
  say "checking against the MD5 published at $url.md5"
fi
if [ "$want_md5" != none ]; then
  got_md5=$(md5sum "$tmp/$name.zip" | awk '{print $1}')
  [ "$got_md5" = "$want_md5" ] ||
    fail "$url has MD5 $got_md5 but GroupLens publishes $want_md5 for $name.zip; refusing it (corrupt or changed download)"
fi
unzip -tq "$tmp/$name.zip" >/dev/null 2>"$tmp/unzip.err" ||
  fail "$url fails unzip's CRC check: $(tr '\n' ' ' <"$tmp/unzip.err"); refusing it"
mkdir "$tmp/unpacked"
unzip -q "$tmp/$name.zip" -d "$tmp/unpacked"
mapfile -t tops < <(find "$tmp/unpacked" -mindepth 1 -maxdepth 1)
[ "${#tops[@]}" -eq 1 ] && [ -d "${tops[0]}" ] ||
  fail "$url does not unpack into one directory; refusing it"
release=${tops[0]}
if [ "$name" = ml-latest-small ]; then
  (cd "$release" && latest_small_sums | sha256sum --quiet -c - >/dev/null 2>&1) ||
    fail "$url does not match the expected SHA-256 sums of ml-latest-small; refusing it"
fi
ratings=$(rating_file "$release") || fail "$url holds no ratings.csv, ratings.dat or u.data; refusing it"
got_ratings=$(count_ratings "$ratings")
[ "$got_ratings" = "$want_ratings" ] ||
  fail "$url: ${ratings##*/} has $got_ratings ratings but $name has $want_ratings; refusing it"

printf 'name=%s\nurl=%s\nratings=%s\nzip_md5=%s\n' "$name" "$url" "$got_ratings" "$want_md5" \
  >"$release/.psrec-fetch"
# Swap in with renames inside DIR: a previous copy moves into the temporary directory and goes with it.
[ ! -e "$target" ] || mv "$target" "$tmp/previous"
mv "$release" "$target"
say "$name: $got_ratings ratings, checked; in $target"
echo "$target"
