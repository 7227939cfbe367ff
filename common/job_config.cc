#include "common/job_config.h"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/cli.h"
#include "common/files.h"
#include "common/log.h"
#include "common/model.h"
#include "common/movielens.h"
#include "common/negative_sampler.h"
#include "common/optimizer_config.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"

ABSL_FLAG(std::string, config, "",
          "Text-format JobConfig file (see proto/config.proto). Flags given on the command line "
          "override its fields.");
ABSL_FLAG(std::string, data, "",
          "Directory holding ratings.csv, ratings.dat or u.data. Empty: $MOVIELENS_DIR, then "
          "data/ml-latest-small, then ../shared/data/ml-latest-small.");
ABSL_FLAG(std::string, split, "seed_time",
          "seed_time (train before the 80th percentile timestamp), user_time (each user's latest "
          "20% test) or random (seeded 80/20).");
ABSL_FLAG(double, test_fraction, 0.2, "Fraction of ratings held out for test.");
ABSL_FLAG(std::string, model, "bias",
          "dot, bias, mlp or genre (bias plus genre embeddings and biases, from the movies file "
          "beside the ratings).");
ABSL_FLAG(int32_t, dim, 30, "Embedding dimension.");
ABSL_FLAG(int32_t, hidden, 10, "Hidden units of the mlp model.");
ABSL_FLAG(double, dropout, 0.6, "Dropout rate on user (.) item, in every model.");
ABSL_FLAG(std::string, loss, "mae",
          "Training loss: mae, mse, huber (delta 1), or bpr: a ranking loss over sampled "
          "negatives (see --negatives, --positive_min_rating). A bpr model's scores are not "
          "ratings: the test MAE and RMSE printed for it mean nothing; rank its checkpoint with "
          "bench/recommend_bench --ranking.");
ABSL_FLAG(int32_t, negatives, 1,
          "loss=bpr: negatives drawn uniformly from the catalogue per positive, in [1, 64].");
ABSL_FLAG(double, positive_min_rating, 0,
          "loss=bpr: training ratings of at least this are positives (0: every rating).");
ABSL_FLAG(std::string, optimizer, "adam", "sgd, adagrad or adam (sparse: a step count per row).");
ABSL_FLAG(double, lr, 0.002, "Learning rate.");
ABSL_FLAG(double, l2, 3e-4,
          "L2 regularization of embedding and bias rows, applied when a row is updated.");
ABSL_FLAG(double, l2_dense, 0, "L2 regularization of the dense layers.");
ABSL_FLAG(double, init_scale, 0.01, "Embedding rows start uniform in [-init_scale, init_scale].");
ABSL_FLAG(int32_t, batch_size, 512, "Ratings per mini-batch.");
ABSL_FLAG(int32_t, epochs, 20, "Passes over the training ratings.");
ABSL_FLAG(int32_t, workers, 1, "Worker processes (distributed runs).");
ABSL_FLAG(std::string, consistency, "sync",
          "sync (every step's gradients from all workers combined, then applied), async, or ssp.");
ABSL_FLAG(int32_t, staleness, 2, "ssp: how many clocks a worker may run ahead of the slowest.");
ABSL_FLAG(int32_t, ranking_every, 0,
          "Ranking metrics (Recall@10, NDCG@10 and coverage over the whole catalogue, beside the "
          "popularity baseline) after every N-th epoch and always after the last. 0: every epoch "
          "when users x items is at most 1e8 (ml-latest-small: 6e6 pairs, milliseconds), else the "
          "last epoch alone (ml-25m: 1e10 pairs, minutes per evaluation); -1: never.");
ABSL_FLAG(uint64_t, seed, 1, "Seed for the split, the initial rows, the shuffles and dropout.");

namespace psrec {
namespace {

// The flags that name an enum value, and the config field each sets (a path through messages).
constexpr std::pair<const char*, const char*> kEnumFlags[] = {
    {"split", "split"},
    {"model", "model"},
    {"loss", "loss"},
    {"optimizer", "optimizer.kind"},
    {"consistency", "consistency"},
};

// Sets the enum field at `path` of `config` from the current value of the string flag `flag`, by
// the enum's value names in lower case (--model=mlp sets MLP). The zero value (unspecified) is not
// a choice.
absl::Status SetEnumFromFlag(const char* flag, absl::string_view path, JobConfig* config) {
  google::protobuf::Message* message = config;
  const std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
  const google::protobuf::FieldDescriptor* field = nullptr;
  for (size_t i = 0; i < parts.size(); ++i) {
    field = message->GetDescriptor()->FindFieldByName(std::string(parts[i]));
    PSREC_CHECK(field != nullptr) << "no field " << path << " in JobConfig";
    if (i + 1 < parts.size()) message = message->GetReflection()->MutableMessage(message, field);
  }
  const std::string text = absl::FindCommandLineFlag(flag)->CurrentValue();
  const google::protobuf::EnumDescriptor* type = field->enum_type();
  const google::protobuf::EnumValueDescriptor* value =
      type->FindValueByName(absl::AsciiStrToUpper(text));
  if (value == nullptr || value->number() == 0) {
    std::vector<std::string> names;
    for (int i = 1; i < type->value_count(); ++i) {
      names.push_back(absl::AsciiStrToLower(type->value(i)->name()));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", text, " is not one of ", absl::StrJoin(names, ", ")));
  }
  message->GetReflection()->SetEnum(message, field, value);
  return absl::OkStatus();
}

absl::Status ReadTextConfig(const std::string& path, JobConfig* config) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat("cannot read config file ", text.status().message()));
  }
  JobConfig parsed;
  if (!google::protobuf::TextFormat::ParseFromString(*text, &parsed)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a text-format psrec.JobConfig (see proto/config.proto)"));
  }
  config->MergeFrom(parsed);
  return absl::OkStatus();
}

// Sets one field from its flag if the flag was named on the command line or `all` is set.
absl::Status ApplyFlags(const std::set<std::string>& specified, bool all, JobConfig* config) {
  auto use = [&](const char* name) { return all || specified.count(name) > 0; };
  if (use("data")) config->set_data_dir(absl::GetFlag(FLAGS_data));
  if (use("test_fraction")) config->set_test_fraction(absl::GetFlag(FLAGS_test_fraction));
  for (const auto& [flag, path] : kEnumFlags) {
    if (!use(flag)) continue;
    if (absl::Status s = SetEnumFromFlag(flag, path, config); !s.ok()) return s;
  }
  // Negative integers are caught here, before they wrap in the proto's unsigned fields.
  for (auto [name, value] : {std::pair{"dim", absl::GetFlag(FLAGS_dim)},
                             std::pair{"hidden", absl::GetFlag(FLAGS_hidden)},
                             std::pair{"batch_size", absl::GetFlag(FLAGS_batch_size)},
                             std::pair{"epochs", absl::GetFlag(FLAGS_epochs)}}) {
    if (!use(name)) continue;
    if (absl::Status s = FlagAtLeast(name, value, 1); !s.ok()) return s;
  }
  if (use("negatives")) {
    const int32_t negatives = absl::GetFlag(FLAGS_negatives);
    if (absl::Status s = FlagAtLeast("negatives", negatives, 1); !s.ok()) return s;
    config->set_negatives(negatives);
  }
  if (use("positive_min_rating")) {
    config->set_positive_min_rating(absl::GetFlag(FLAGS_positive_min_rating));
  }
  if (use("dim")) config->set_dim(absl::GetFlag(FLAGS_dim));
  if (use("hidden")) config->set_hidden(absl::GetFlag(FLAGS_hidden));
  if (use("batch_size")) config->set_batch_size(absl::GetFlag(FLAGS_batch_size));
  if (use("epochs")) config->set_epochs(absl::GetFlag(FLAGS_epochs));
  if (use("dropout")) config->set_dropout(absl::GetFlag(FLAGS_dropout));
  if (use("lr")) config->mutable_optimizer()->set_lr(absl::GetFlag(FLAGS_lr));
  if (use("l2")) config->set_l2(absl::GetFlag(FLAGS_l2));
  if (use("l2_dense")) config->set_l2_dense(absl::GetFlag(FLAGS_l2_dense));
  if (use("init_scale")) config->set_init_scale(absl::GetFlag(FLAGS_init_scale));
  if (use("seed")) config->set_seed(absl::GetFlag(FLAGS_seed));
  if (use("ranking_every")) config->set_ranking_every(absl::GetFlag(FLAGS_ranking_every));
  if (use("workers")) {
    const int32_t workers = absl::GetFlag(FLAGS_workers);
    if (absl::Status s = FlagAtLeast("workers", workers, 1); !s.ok()) return s;
    config->set_num_workers(workers);
  }
  if (use("staleness")) {
    const int32_t staleness = absl::GetFlag(FLAGS_staleness);
    if (staleness < 0) {
      return absl::InvalidArgumentError(absl::StrCat("--staleness=", staleness, " is negative"));
    }
    config->set_staleness(staleness);
  }
  return absl::OkStatus();
}

bool Exists(const std::string& dir) {
  for (const char* name : {"/ratings.csv", "/ratings.dat", "/u.data"}) {
    std::ifstream in(dir + name);
    if (in) return true;
  }
  return false;
}

}  // namespace

const char* JobFlagsFile() { return __FILE__; }

absl::StatusOr<JobConfig> JobConfigFromFlags(const std::set<std::string>& specified) {
  JobConfig config;
  if (absl::Status s = ApplyFlags(specified, /*all=*/true, &config); !s.ok()) return s;
  const std::string config_file = absl::GetFlag(FLAGS_config);
  if (!config_file.empty()) {
    if (absl::Status s = ReadTextConfig(config_file, &config); !s.ok()) return s;
    if (absl::Status s = ApplyFlags(specified, /*all=*/false, &config); !s.ok()) return s;
  }
  if (absl::Status s = ResolveOptimizerConfig(config.mutable_optimizer()); !s.ok()) return s;
  FillTableSpecs(&config);
  if (absl::Status s = ValidateJobConfig(config); !s.ok()) return s;
  return config;
}

absl::Status ValidateJobConfig(const JobConfig& config) {
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError(what); };
  if (config.split() == SPLIT_UNSPECIFIED) return bad("split is not set");
  if (!(config.test_fraction() > 0 && config.test_fraction() < 1)) {
    return bad(absl::StrCat("test_fraction ", config.test_fraction(), " is not in (0, 1)"));
  }
  if (config.dim() < 1 || config.dim() > 4096) {
    return bad(absl::StrCat("dim ", config.dim(), " is not in [1, 4096]"));
  }
  if (config.model() == MLP && (config.hidden() < 1 || config.hidden() > 4096)) {
    return bad(absl::StrCat("hidden ", config.hidden(), " is not in [1, 4096]"));
  }
  if (!(config.dropout() >= 0 && config.dropout() < 1)) {
    return bad(absl::StrCat("dropout ", config.dropout(), " is not in [0, 1)"));
  }
  if (config.batch_size() < 1 || config.batch_size() > (1u << 20)) {
    return bad(absl::StrCat("batch_size ", config.batch_size(), " is not in [1, 1048576]"));
  }
  if (config.epochs() < 1) return bad("epochs must be at least 1");
  if (config.loss() == BPR && (config.negatives() < 1 || config.negatives() > kMaxNegatives)) {
    return bad(
        absl::StrCat("negatives ", config.negatives(), " is not in [1, ", kMaxNegatives, "]"));
  }
  if (!(config.positive_min_rating() >= 0 && config.positive_min_rating() <= kMaxRating)) {
    return bad(absl::StrCat("positive_min_rating ", config.positive_min_rating(), " is not in [0, ",
                            kMaxRating, "]"));
  }
  for (auto [name, value] : {std::pair{"l2", config.l2()}, std::pair{"l2_dense", config.l2_dense()},
                             std::pair{"init_scale", config.init_scale()}}) {
    if (!(value >= 0 && std::isfinite(value))) {
      return bad(absl::StrCat(name, " ", value, " must be finite and not negative"));
    }
  }
  if (config.tables_size() == 0) return bad("tables are not filled in");
  if (config.consistency() == CONSISTENCY_UNSPECIFIED) return bad("consistency is not set");
  if (config.num_workers() < 1) return bad("num_workers must be at least 1");
  return absl::OkStatus();
}

absl::StatusOr<std::string> FindDataDir(const std::string& flag) {
  if (!flag.empty()) {
    if (Exists(flag)) return flag;
    return absl::NotFoundError(
        absl::StrCat("--data=", flag, " holds none of ratings.csv, ratings.dat or u.data"));
  }
  std::vector<std::string> tried;
  if (const char* env = std::getenv("MOVIELENS_DIR"); env != nullptr && *env != '\0') {
    if (Exists(env)) return std::string(env);
    tried.push_back(absl::StrCat("$MOVIELENS_DIR=", env));
  }
  for (const char* dir : {"data/ml-latest-small", "../shared/data/ml-latest-small"}) {
    if (Exists(dir)) return std::string(dir);
    tried.push_back(dir);
  }
  return absl::NotFoundError(
      absl::StrCat("no MovieLens ratings found (tried --data, ", absl::StrJoin(tried, ", "),
                   "); pass --data=DIR or run scripts/fetch_data.sh to download ml-latest-small"));
}

}  // namespace psrec
