#include "app/recommend_main.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "app/checkpoint_scoring.h"
#include "app/recommender.h"
#include "app/users_flag.h"
#include "common/files.h"
#include "common/log.h"

// --checkpoint is eval's (app/eval_main.cc), --data the job's (common/job_config.cc).
ABSL_DECLARE_FLAG(std::string, checkpoint);
ABSL_DECLARE_FLAG(std::string, data);

ABSL_FLAG(int64_t, user, 0, "The MovieLens user id to recommend for.");
ABSL_FLAG(int32_t, k, 10, "How many movies to recommend to each user, in [1, 100000].");

namespace psrec {
namespace {

constexpr char kSub[] = "recommend";
constexpr int32_t kMaxK = 100000;

// The ids of a --users file: the first comma-separated field of each line; blank lines, '#'
// comments and a header whose first field is not a number (on line 1 only) are skipped.
absl::StatusOr<std::vector<int64_t>> ReadUserIds(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  std::vector<int64_t> ids;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    const absl::string_view field =
        absl::StripAsciiWhitespace(line.substr(0, std::min(line.find(','), line.size())));
    if (field.empty() || absl::StartsWith(field, "#")) continue;
    int64_t id = 0;
    if (absl::SimpleAtoi(field, &id)) {
      ids.push_back(id);
    } else if (line_number > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", line_number, ": '", field, "' is not a user id"));
    }
  }
  if (ids.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no user ids"));
  return ids;
}

// A CSV field, quoted when it holds a comma, a quote or a line break.
std::string CsvField(absl::string_view text) {
  if (text.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string Title(const Recommendation::Entry& e) { return e.movie ? e.movie->title : ""; }
std::string Genres(const Recommendation::Entry& e) {
  return e.movie ? JoinGenres(e.movie->genres) : "";
}

void PrintTable(const Recommendation& rec) {
  std::printf("rank\tmovie_id\ttitle\tgenres\tpredicted_rating\tscore\n");
  for (size_t r = 0; r < rec.entries.size(); ++r) {
    const Recommendation::Entry& e = rec.entries[r];
    std::printf("%zu\t%lld\t%s\t%s\t%.2f\t%.4f\n", r + 1, static_cast<long long>(e.movie_id),
                Title(e).c_str(), Genres(e).c_str(), e.predicted, e.score);
  }
}

void PrintCsvRows(int64_t user, const Recommendation& rec) {
  for (size_t r = 0; r < rec.entries.size(); ++r) {
    const Recommendation::Entry& e = rec.entries[r];
    std::printf("%lld,%zu,%lld,%s,%s,%.4f,%.4f,%s\n", static_cast<long long>(user), r + 1,
                static_cast<long long>(e.movie_id), CsvField(Title(e)).c_str(),
                CsvField(Genres(e)).c_str(), e.predicted, e.score,
                rec.fallback.empty() ? "model" : "popular");
  }
}

// The flags' users, or a usage error naming the flag.
absl::StatusOr<std::vector<int64_t>> UsersFromFlags(const std::set<std::string>& specified,
                                                    bool* usage_error) {
  *usage_error = true;
  const bool one = specified.count("user") > 0, many = specified.count("users") > 0;
  if (one == many) {
    return absl::InvalidArgumentError(
        one ? "--user and --users cannot both be given: one user, or a file of them"
            : "--user=ID or --users=FILE is required; see psrec recommend --help");
  }
  if (const int32_t k = absl::GetFlag(FLAGS_k); k < 1 || k > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("--k=", k, " is not in [1, ", kMaxK, "]"));
  }
  if (absl::GetFlag(FLAGS_checkpoint).empty()) {
    return absl::InvalidArgumentError("--checkpoint=DIR is required; see psrec recommend --help");
  }
  if (many && UsersFlag().empty()) return absl::InvalidArgumentError("--users= names no file");
  *usage_error = false;
  if (one) return std::vector<int64_t>{absl::GetFlag(FLAGS_user)};
  return ReadUserIds(UsersFlag());
}

// The movies file beside the ratings, or an empty catalog when there is none (said on stderr).
absl::StatusOr<MovieCatalog> LoadMovies(const std::string& data_dir) {
  absl::StatusOr<MovieCatalog> movies = ReadMovies(data_dir);
  if (absl::IsNotFound(movies.status())) {
    std::fprintf(stderr, "psrec recommend: %s; printing movie ids without titles or genres\n",
                 std::string(movies.status().message()).c_str());
    return MovieCatalog{};
  }
  if (movies.ok() && movies->latin1) {
    PSREC_LOG(INFO) << movies->path << " is not UTF-8; read it as Latin-1";
  }
  return movies;
}

absl::StatusOr<std::unique_ptr<Recommender>> MakeRecommender(const ScoringCheckpoint& ckpt) {
  absl::StatusOr<MovieCatalog> movies = LoadMovies(ckpt.config.data_dir());
  if (!movies.ok()) return movies.status();
  return Recommender::Create(ckpt.config, ckpt.job.data, ckpt.job.split, ckpt.store.get(),
                             *std::move(movies), absl::GetFlag(FLAGS_k));
}

// Recommends for every user, the table for one or CSV for several; returns the exit code.
int RecommendAll(Recommender& recommender, const std::vector<int64_t>& users, bool csv) {
  if (csv) {
    std::printf("user_id,rank,movie_id,title,genres,predicted_rating,score,source\n");
  }
  int64_t fallbacks = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const int64_t user : users) {
    absl::StatusOr<Recommendation> rec = recommender.Recommend(user);
    if (!rec.ok()) return Exit(kSub, kExitFailed, rec.status());
    if (!rec->fallback.empty()) {
      ++fallbacks;
      if (!csv) std::fprintf(stderr, "psrec recommend: %s\n", rec->fallback.c_str());
    }
    csv ? PrintCsvRows(user, *rec) : PrintTable(*rec);
  }
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (csv && fallbacks > 0) {
    std::fprintf(stderr,
                 "psrec recommend: %lld of %zu users have no training rating; they got the most-"
                 "rated training movies (source=popular)\n",
                 static_cast<long long>(fallbacks), users.size());
  }
  PSREC_LOG(INFO) << "ranked " << recommender.catalogue_size() << " movies for " << users.size()
                  << (users.size() == 1 ? " user" : " users") << " in " << ms << " ms ("
                  << ms / static_cast<double>(users.size()) << " ms per user)";
  return 0;
}

int RunRecommend(const std::set<std::string>& specified) {
  SetLogRole(kSub);
  bool usage_error = false;
  absl::StatusOr<std::vector<int64_t>> users = UsersFromFlags(specified, &usage_error);
  if (!users.ok()) return Exit(kSub, usage_error ? kExitUsage : kExitFailed, users.status());
  absl::StatusOr<ScoringCheckpoint> ckpt =
      LoadScoringCheckpoint(absl::GetFlag(FLAGS_checkpoint), absl::GetFlag(FLAGS_data));
  if (!ckpt.ok()) return Exit(kSub, kExitFailed, ckpt.status());
  PSREC_LOG(INFO) << "loaded " << ckpt->dir << " (" << ckpt->manifest.epochs_done()
                  << " epochs, model " << ModelKind_Name(ckpt->config.model()) << ", split "
                  << Split_Name(ckpt->config.split()) << ") and " << ckpt->job.data.path;
  absl::StatusOr<std::unique_ptr<Recommender>> recommender = MakeRecommender(*ckpt);
  if (!recommender.ok()) return Exit(kSub, kExitFailed, recommender.status());
  return RecommendAll(**recommender, *users, specified.count("users") > 0);
}

}  // namespace

Subcommand RecommendSubcommand() {
  return Subcommand{
      "recommend",
      "print a user's top K movies from a saved checkpoint",
      "psrec recommend --checkpoint=DIR (--user=ID | --users=FILE) [--k=10] [--data=DIR]\n\n"
      "Loads the checkpoint (DIR, or the latest complete one under a --checkpoint_dir root) and\n"
      "the ratings it was trained on (--data, else the directory its MANIFEST records, else the\n"
      "usual search), splits them as the run did, scores every movie of the ratings file for the\n"
      "user at once, and ranks those the user did not rate in training, ties to the smaller\n"
      "movie id. With --user, stdout gets a tab-separated table: rank, movie id, title, genres,\n"
      "the predicted rating (Model::Predict's, clipped to 0.5-5 stars) and the unclipped score\n"
      "the ranking used. With --users, the same as CSV, after user_id, and a last column\n"
      "'source', model or popular: user_id,rank,movie_id,title,genres,predicted_rating,score,\n"
      "source.\n"
      "Titles and genres come from movies.csv, movies.dat or u.item beside the ratings (Latin-1\n"
      "files are converted to UTF-8); without one, the ids are printed alone and stderr says so.\n"
      "A user with no training rating gets the K most-rated training movies (source=popular),\n"
      "and stderr says so. Exit 1: a missing or corrupt checkpoint, ratings or movies file (the\n"
      "message names the file and line); exit 2: bad flags.",
      {__FILE__, UsersFlagFile()},
      &RunRecommend,
      {"checkpoint", "data"},
  };
}

}  // namespace psrec
