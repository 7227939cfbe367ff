#!/usr/bin/env bash
# Writes the seed corpus of the fuzz targets into fuzz/corpus/<target>/: a few small hand-written
# inputs each (no real MovieLens data). The server fuzzer's seeds are text-format
# psrec.fuzz.ServerFuzzInput files in fuzz/seeds/server_fuzzer/, encoded here with protoc.
# Run it after changing a seed or a message; its output is checked in.
set -euo pipefail
cd "$(dirname "$0")"
command -v protoc >/dev/null || { echo "make_corpus: protoc is not installed (scripts/install_deps.sh)" >&2; exit 1; }

# movielens_fuzzer: the first byte picks the layout (byte % 3: 0 csv, 1 dat, 2 u.data).
out=corpus/movielens_fuzzer
rm -rf "$out" && mkdir -p "$out"
printf '0userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n1,1029,3.0,1260759179\n2,10,4,835355493\n' \
  >"$out/csv"
printf '0\xef\xbb\xbfuserId,movieId,rating,timestamp\r\n7,1,0.5,5\r\n\r\n7,2,5.0,5\r\n' >"$out/csv_bom_crlf"
printf '11::1193::5::978300760\n1::661::3::978302109\n2::1193::4.5::978298413\n' >"$out/dat"
printf '2196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t377\t1\t878887116\n' >"$out/udata"
printf '0userId,movieId,rating,timestamp\n1,2,6,3\n' >"$out/csv_bad_rating"

# job_config_fuzzer: the text of a --config file.
out=corpus/job_config_fuzzer
rm -rf "$out" && mkdir -p "$out"
cat >"$out/mlp.textproto" <<'CONFIG'
data_dir: "/data/ml-latest-small"
split: USER_TIME
model: MLP
dim: 32
hidden: 16
optimizer { kind: ADAM lr: 0.002 beta1: 0.9 }
num_shards: 2
num_workers: 3
consistency: SSP
staleness: 2
CONFIG
cat >"$out/tables.textproto" <<'CONFIG'
split: RANDOM test_fraction: 0.25 model: DOT epochs: 1 consistency: ASYNC num_workers: 1
tables { id: 0 name: "user" width: 4 init: UNIFORM init_scale: 0.1 l2: 0.001 }
tables { id: 7 name: "extra" width: 1 init: ZEROS }
CONFIG
printf 'optimizer { kind: ADAGRAD initial_accumulator: 0.1 epsilon: 1e-8 }\nloss: HUBER\ndropout: 0\n' \
  >"$out/adagrad.textproto"
printf 'dim: 0\nbatch_size: 2000000\n' >"$out/bad_ranges.textproto"

# server_fuzzer: serialized psrec.fuzz.ServerFuzzInput.
out=corpus/server_fuzzer
rm -rf "$out" && mkdir -p "$out"
for seed in seeds/server_fuzzer/*.textproto; do
  protoc -I. -I../proto --encode=psrec.fuzz.ServerFuzzInput server_fuzz.proto <"$seed" \
    >"$out/$(basename "$seed" .textproto)"
done
# checkpoint_fuzzer: byte 0 even, a MANIFEST's text; odd, then the manifest's row count (one byte)
# and a rows file for the fuzzer's fixed config (dot, dim 1, adagrad: tables 0-3 of width 1 and
# table 4 of width 2, one optimizer state float per value). Little-endian, ps/checkpoint_codec.h's layout.
out=corpus/checkpoint_fuzzer
rm -rf "$out" && mkdir -p "$out"
u32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)))"; }
u64() { u32 "$1"; u32 0; }
f32() { u32 "$1"; }  # the float's bits
header() { printf 'PSRECKPT'; u32 1; u32 0; u32 1; u32 5; }
table() { u32 "$1"; u32 "$2"; u32 "$2"; u64 "$3"; }  # id, width (= state floats), rows
{ printf '\x01\x00'; header; for t in 0 1 2 3; do table $t 1 0; done; table 4 2 0; } >"$out/rows_empty"
{
  printf '\x01\x02'; header
  table 0 1 1; u64 5; u32 1; f32 0x3f800000; f32 0x3f000000  # key 5, step 1, 1.0, state 0.5
  for t in 1 2 3; do table $t 1 0; done
  table 4 2 1; u64 0; u32 2; f32 0x3e800000; f32 0xbf000000; f32 0x3f800000; f32 0x3f800000
} >"$out/rows_two"
cat >"$out/manifest" <<'MANIFEST'
0format_version: 1
config { model: DOT dim: 1 seed: 1 optimizer { kind: ADAGRAD lr: 0.01 }
  tables { id: 0 name: "user_embedding" width: 1 init: UNIFORM } }
epochs_done: 3
num_shards: 1
files { name: "shard-00000-of-00001.rows" shard: 0 bytes: 24 crc32: 1 rows: 0 }
created: "2024-01-01T00:00:00Z"
MANIFEST

echo "make_corpus: wrote $(find corpus -type f | wc -l) files under fuzz/corpus/"
