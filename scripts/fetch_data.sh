#!/usr/bin/env bash
# Downloads MovieLens ml-latest-small from GroupLens into DIR (default data/) and checks every file
# against the SHA-256 sums of the release psrec was evaluated on. Prints the dataset directory.
set -euo pipefail
dest=${1:-data}
url=https://files.grouplens.org/datasets/movielens/ml-latest-small.zip
target="$dest/ml-latest-small"

check() {
  (cd "$target" && sha256sum --quiet -c - <<'SUMS'
63d22ac138e80fae37021797ed8e1b9424b5239dc576a137422adf783ae3f404  README.txt
028a4a1d17751ca9276e0e0718cfc22356350f224a996e1ec348c23274b9209d  links.csv
c47b783f23eb304413307e1bb05335e427737da20ec8d3c0e96335567dd5f3dc  movies.csv
80da8b3393dae325bbba5a31f291a6ba55d8d4f4396de3c456f2c1635b1b70e8  ratings.csv
68eec00a0820c2faa8863a6df7032f13d5899a4462bce9a97213905297ff3d34  tags.csv
SUMS
  )
}

if [ -f "$target/ratings.csv" ] && check 2>/dev/null; then
  echo "$target"
  exit 0
fi
mkdir -p "$dest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch_data: downloading $url" >&2
if ! curl -fsSL --retry 3 --max-time 300 -o "$tmp/ml.zip" "$url"; then
  echo "fetch_data: could not download $url; put ml-latest-small in data/ or pass --data" >&2
  exit 1
fi
unzip -q "$tmp/ml.zip" -d "$tmp"
if ! (target="$tmp/ml-latest-small"; check); then
  echo "fetch_data: $url does not match the expected SHA-256 sums; refusing to use it" >&2
  exit 1
fi
rm -rf "$target"
mv "$tmp/ml-latest-small" "$target"
echo "$target"
