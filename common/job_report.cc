#include "common/job_report.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/files.h"
#include "common/log.h"
#include "google/protobuf/util/json_util.h"

namespace psrec {
namespace {

// ', "recall_at_10": ..., "ndcg_at_10": ..., "coverage_at_10": ...', or nothing when not ranked.
std::string RankingJson(const RankingMetrics& m) {
  if (!m.ranked) return "";
  return absl::StrFormat(
      ", \"recall_at_10\": %.17g, \"ndcg_at_10\": %.17g, \"coverage_at_10\": %.17g", m.recall,
      m.ndcg, m.coverage);
}

}  // namespace

std::string RankingText(const RankingMetrics& m) {
  if (!m.ranked) return "";
  return absl::StrFormat("Recall@10 %.4f NDCG@10 %.4f coverage@10 %.4f (%d users)", m.recall,
                         m.ndcg, m.coverage, m.users);
}

absl::Status FinishEpoch(const EpochRecord& record, uint32_t epochs) {
  const std::string line =
      absl::StrFormat("epoch %u/%u train loss %.4f  test MAE %.4f RMSE %.4f  %.0f ratings/s  %.2fs",
                      record.epoch, epochs, record.train_loss, record.test.mae, record.test.rmse,
                      static_cast<double>(record.examples) / record.train_seconds, record.seconds);
  PSREC_LOG(INFO) << line << (record.ranking.ranked ? "  " : "") << RankingText(record.ranking);
  if (!std::isfinite(record.train_loss) || !std::isfinite(record.test.mae) ||
      !std::isfinite(record.test.rmse)) {
    return absl::OutOfRangeError(
        absl::StrCat("training diverged at ", line, "; try a smaller --lr"));
  }
  return absl::OkStatus();
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string ProcessTable(absl::Span<const ProcessReport> processes) {
  std::string out =
      absl::StrFormat("%-14s %-12s %12s %9s  %s", "process", "role", "peak RSS", "CPU s", "note");
  for (const ProcessReport& p : processes) {
    absl::StrAppendFormat(&out, "\n%-14s %-12s %9.1f MB %9.2f  %s", p.name, p.role,
                          static_cast<double>(p.peak_rss_bytes) / 1e6, p.cpu_seconds, p.note);
  }
  return out;
}

absl::Status WriteMetricsJson(const std::string& path, const JobConfig& config,
                              absl::Span<const EpochRecord> epochs,
                              absl::Span<const ProcessReport> processes,
                              const RankingMetrics& popularity) {
  std::string config_json;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  options.add_whitespace = true;
  if (auto s = google::protobuf::util::MessageToJsonString(config, &config_json, options);
      !s.ok()) {
    return absl::InternalError(absl::StrCat("config to JSON: ", s.ToString()));
  }
  std::string out = absl::StrCat("{\n  \"config\": ", config_json, ",\n  \"epochs\": [");
  for (size_t k = 0; k < epochs.size(); ++k) {
    const EpochRecord& e = epochs[k];
    absl::StrAppendFormat(&out,
                          "%s\n    {\"epoch\": %u, \"train_loss\": %.17g, \"test_mae\": %.17g, "
                          "\"test_rmse\": %.17g, \"seconds\": %.3f, \"train_seconds\": %.3f, "
                          "\"examples\": %u%s}",
                          k == 0 ? "" : ",", e.epoch, e.train_loss, e.test.mae, e.test.rmse,
                          e.seconds, e.train_seconds, e.examples, RankingJson(e.ranking));
  }
  out += "\n  ]";
  out += ",\n  \"processes\": [";
  for (size_t k = 0; k < processes.size(); ++k) {
    const ProcessReport& p = processes[k];
    absl::StrAppendFormat(&out,
                          "%s\n    {\"role\": %s, \"name\": %s, \"peak_rss_bytes\": %u, "
                          "\"cpu_seconds\": %.3f%s}",
                          k == 0 ? "" : ",", JsonString(p.role), JsonString(p.name),
                          p.peak_rss_bytes, p.cpu_seconds,
                          p.note.empty() ? "" : absl::StrCat(", \"note\": ", JsonString(p.note)));
  }
  out += processes.empty() ? "]" : "\n  ]";
  if (popularity.ranked) {
    absl::StrAppendFormat(&out, ",\n  \"baseline\": {\"popularity\": {\"users\": %d%s}}",
                          popularity.users, RankingJson(popularity));
  }
  // "final" comes last: readers (and tests) take everything from it on as the result.
  if (!epochs.empty()) {
    absl::StrAppendFormat(&out, ",\n  \"final\": {\"test_mae\": %.17g, \"test_rmse\": %.17g%s}",
                          epochs.back().test.mae, epochs.back().test.rmse,
                          RankingJson(epochs.back().ranking));
  }
  out += "\n}\n";
  return WriteFileAtomically(path, out);
}

}  // namespace psrec
