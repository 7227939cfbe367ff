#!/usr/bin/env bash
# Tests scripts/fetch_data.sh without the internet: small fake releases served by python's
# http.server on 127.0.0.1 (and, once, by a fake download command), checked against the built-in
# checksum table or against one the test writes (PSREC_FETCH_SUMS).
#
# Usage: tests/scripts/fetch_data_test.sh path/to/fetch_data.sh
set -uo pipefail
fetch=$(realpath "$1")
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
# Debian's own python3 where there is one: a version manager's shim can take seconds to start.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
failures=0
check() {  # check DESCRIPTION COMMAND...: one assertion
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what" >&2; failures=$((failures + 1)); fi
}

# A release zip: NAME.zip holding TOP/ with a rating file of ROWS lines. Stored, not deflated, so
# that a flipped byte in a member is a CRC error rather than a broken deflate stream.
make_zip() {  # make_zip OUT.zip TOP FILE ROWS
  "$py" - "$@" <<'PY'
import sys, zipfile
out, top, name, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sep = {"ratings.csv": ",", "ratings.dat": "::", "u.data": "\t"}[name]
lines = ["userId,movieId,rating,timestamp"] if name.endswith(".csv") else []
lines += [sep.join([str(1 + i // 20), str(7 + i), "4", str(1000 + i)]) for i in range(rows)]
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    z.writestr(f"{top}/{name}", "\n".join(lines) + "\n")
    z.writestr(f"{top}/README.txt", "fake release for fetch_data_test\n")
PY
}
md5() { md5sum "$1" | awk '{print $1}'; }

srv=$work/srv
mkdir -p "$srv"
make_zip "$srv/ml-1m.zip" ml-1m ratings.dat 50
make_zip "$srv/ml-10m.zip" ml-10M100K ratings.dat 30
make_zip "$srv/ml-20m.zip" ml-20m ratings.csv 40
make_zip "$srv/ml-100k.zip" ml-100k u.data 25
make_zip "$srv/ml-25m.zip" ml-25m ratings.csv 60
cp "$srv/ml-25m.zip" "$srv/crc.zip"
# Flip one byte inside the stored ratings.csv member (after its 30-byte header and name).
"$py" - "$srv/crc.zip" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[30 + len("ml-25m/ratings.csv") + 40] ^= 0x01
open(p, "wb").write(bytes(b))
PY
mv "$srv/crc.zip" "$srv/ml-32m.zip"
echo "MD5 (ml-10m.zip) = $(md5 "$srv/ml-10m.zip")" >"$srv/ml-10m.zip.md5"
echo "$(md5 "$srv/ml-1m.zip")  ml-20m.zip" >"$srv/ml-20m.zip.md5"  # a published sum that is wrong

cat >"$work/sums" <<EOF
ml-1m $(md5 "$srv/ml-1m.zip") 50
ml-10m - 30
ml-20m - 40
ml-25m $(md5 "$srv/ml-25m.zip") 61
ml-32m $(md5 "$srv/ml-32m.zip") 60
ml-100k - 25
EOF

"$py" -u -m http.server 0 --bind 127.0.0.1 --directory "$srv" >"$work/server.log" 2>&1 &
server_pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$work/server.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: http.server did not start: $(cat "$work/server.log")" >&2; exit 1; }
export PSREC_FETCH_URL_BASE="http://127.0.0.1:$port"

run() {  # run DEST NAME [env...]: runs fetch_data.sh, leaving status, stdout and stderr in $work
  local dest=$1 name=$2
  shift 2
  env "$@" bash "$fetch" "$name" "$dest" >"$work/out" 2>"$work/err"
  status=$?
}
err_has() { grep -qF -- "$1" "$work/err" || { echo "  stderr was: $(cat "$work/err")" >&2; false; }; }
nothing_left() {  # only the entries named may be in DIR: no temporary directory, no partial release
  local dir=$1
  shift
  local got want
  got=$(cd "$dir" && find . -mindepth 1 -maxdepth 1 | sort | tr '\n' ' ')
  want=""
  [ $# -eq 0 ] || want=$(printf './%s\n' "$@" | sort | tr '\n' ' ')
  [ "$got" = "$want" ] || { echo "  $dir holds: $got; expected: $want" >&2; false; }
}

# 1. A good download against a pinned sum passes, lands in DIR/NAME, and is recognised afterwards.
d=$work/good
run "$d" ml-1m PSREC_FETCH_SUMS="$work/sums"
check "good zip: exit 0" [ "$status" -eq 0 ]
check "good zip: prints DIR/NAME" [ "$(cat "$work/out")" = "$d/ml-1m" ]
check "good zip: ratings unpacked" [ "$(wc -l <"$d/ml-1m/ratings.dat")" -eq 50 ]
check "good zip: no temporary files left" nothing_left "$d" ml-1m
run "$d" ml-1m PSREC_FETCH_SUMS="$work/sums" PSREC_FETCH_CMD=false
check "second run: already there, no download" [ "$status" -eq 0 ]
check "second run: says so" err_has "already there"

# 2. The built-in table: a fake ml-100k is not GroupLens's zip, so its MD5 is refused.
d=$work/builtin
run "$d" ml-100k
check "built-in MD5 mismatch: exit 1" [ "$status" -eq 1 ]
check "built-in MD5 mismatch: names both sums" \
  err_has "has MD5 $(md5 "$srv/ml-100k.zip") but GroupLens publishes 0e33842e24a9c977be4e0107933c0723"
check "built-in MD5 mismatch: nothing installed" nothing_left "$d"

# 3. A checksum failure leaves an earlier copy as it was.
d=$work/keep
mkdir -p "$d/ml-25m"
echo "earlier copy" >"$d/ml-25m/ratings.csv"
run "$d" ml-25m
check "MD5 mismatch over an earlier copy: exit 1" [ "$status" -eq 1 ]
check "MD5 mismatch over an earlier copy: copy untouched" \
  [ "$(cat "$d/ml-25m/ratings.csv")" = "earlier copy" ]
check "MD5 mismatch over an earlier copy: no temporary files" nothing_left "$d" ml-25m

# 4. The .md5 published beside the zip, in GroupLens's "MD5 (file) = sum" form.
d=$work/sidecar
run "$d" ml-10m PSREC_FETCH_SUMS="$work/sums"
check "published .md5: exit 0" [ "$status" -eq 0 ]
check "published .md5: renamed from the zip's ml-10M100K" [ -f "$d/ml-10m/ratings.dat" ]
check "published .md5: says where the sum came from" err_has "checking against the MD5 published at"
run "$d" ml-20m PSREC_FETCH_SUMS="$work/sums"
check "wrong published .md5: exit 1" [ "$status" -eq 1 ]
check "wrong published .md5: message" err_has "but GroupLens publishes $(md5 "$srv/ml-1m.zip")"
run "$d" ml-100k PSREC_FETCH_SUMS="$work/sums"
check "no published .md5: exit 1" [ "$status" -eq 1 ]
check "no published .md5: message" err_has "no published checksum at $PSREC_FETCH_URL_BASE/ml-100k.zip.md5"
check "published .md5 failures: only the good release" nothing_left "$d" ml-10m

# 5. The right MD5 but the wrong number of ratings, and a member whose CRC is wrong.
d=$work/content
run "$d" ml-25m PSREC_FETCH_SUMS="$work/sums"
check "rating count: exit 1" [ "$status" -eq 1 ]
check "rating count: message" err_has "ratings.csv has 60 ratings but ml-25m has 61"
run "$d" ml-32m PSREC_FETCH_SUMS="$work/sums"
check "CRC: exit 1" [ "$status" -eq 1 ]
check "CRC: message" err_has "fails unzip's CRC check"
check "content failures: nothing installed" nothing_left "$d"

# 6. A download that fails, and a fake download command.
d=$work/download
run "$d" ml-1m PSREC_FETCH_SUMS="$work/sums" PSREC_FETCH_URL_BASE="http://127.0.0.1:$port/missing"
check "404: exit 1" [ "$status" -eq 1 ]
check "404: names the URL" err_has "could not download http://127.0.0.1:$port/missing/ml-1m.zip"
check "404: nothing installed" nothing_left "$d"
cat >"$work/fake_fetch.sh" <<EOF
#!/bin/sh
# Serves URL by its last path component from $srv.
cp "$srv/\${1##*/}" "\$2"
EOF
chmod +x "$work/fake_fetch.sh"
run "$d" ml-1m PSREC_FETCH_SUMS="$work/sums" PSREC_FETCH_CMD="$work/fake_fetch.sh"
check "fake download command: exit 0" [ "$status" -eq 0 ]
check "fake download command: installed" [ -f "$d/ml-1m/.psrec-fetch" ]

# 7. Usage errors.
run "$work/usage" ml-99m
check "unknown release: exit 2" [ "$status" -eq 2 ]
check "unknown release: names it and the choices" err_has "unknown release 'ml-99m'"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
