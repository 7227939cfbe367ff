#include "common/job_config.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "gtest/gtest.h"

ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(int32_t, dim);
ABSL_DECLARE_FLAG(double, dropout);

namespace psrec {
namespace {

std::string WriteConfig(const std::string& name, const std::string& text) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) / name).string();
  std::ofstream(path) << text;
  return path;
}

TEST(JobConfigFromFlagsTest, DefaultsAreValidAndComplete) {
  absl::FlagSaver saver;
  absl::StatusOr<JobConfig> config = JobConfigFromFlags({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model(), BIAS);
  EXPECT_EQ(config->dim(), 30u);
  EXPECT_EQ(config->tables_size(), 5);
  EXPECT_DOUBLE_EQ(config->test_fraction(), 0.2);
  EXPECT_FLOAT_EQ(config->optimizer().beta2(), 0.999f) << "optimizer defaults resolved";
}

TEST(JobConfigFromFlagsTest, AFileOverridesDefaultsAndNamedFlagsOverrideTheFile) {
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_config,
                WriteConfig("job.textproto", "model: MLP\ndim: 12\ndropout: 0\nepochs: 3\n"));
  absl::SetFlag(&FLAGS_dim, 40);
  absl::StatusOr<JobConfig> config = JobConfigFromFlags({"config", "dim"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->model(), MLP);
  EXPECT_EQ(config->epochs(), 3u);
  EXPECT_EQ(config->dropout(), 0.0f) << "an explicit zero in the file is kept";
  EXPECT_EQ(config->dim(), 40u) << "a flag on the command line wins";
  EXPECT_EQ(config->batch_size(), 512u) << "what the file leaves out keeps the flag default";
}

TEST(JobConfigFromFlagsTest, BadInputNamesTheProblem) {
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_model, "deep");
  absl::StatusOr<JobConfig> config = JobConfigFromFlags({"model"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "--model=deep is not one of dot, bias, mlp, genre");

  absl::SetFlag(&FLAGS_model, "bias");
  absl::SetFlag(&FLAGS_config, WriteConfig("bad.textproto", "model: MLP\nno_such_field: 1\n"));
  config = JobConfigFromFlags({"config"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("bad.textproto"), std::string::npos) << config.status();

  absl::SetFlag(&FLAGS_config, "/nonexistent/job.textproto");
  config = JobConfigFromFlags({"config"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("/nonexistent/job.textproto"), std::string::npos);

  absl::SetFlag(&FLAGS_config, "");
  absl::SetFlag(&FLAGS_dropout, 1.5);
  config = JobConfigFromFlags({"dropout"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("dropout"), std::string::npos) << config.status();
}

TEST(ConfigDifferencesTest, ListsFieldsInDeclarationOrder) {
  JobConfig a, b;
  a.set_model(DOT);
  b.set_model(MLP);
  a.set_seed(1);
  b.set_seed(2);
  EXPECT_EQ(ConfigDifferences(a, b),
            (std::vector<std::string>{"model: DOT vs MLP", "seed: 1 vs 2"}));
  EXPECT_TRUE(ConfigDifferences(a, a).empty());
}

}  // namespace
}  // namespace psrec
