#include "ps/checkpoint_manifest.h"

#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/model.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/ps/checkpoint_test_util.h"

namespace psrec {
namespace {

namespace fs = std::filesystem;
using ::psrec::checkpoint_testing::Config;
using ::psrec::checkpoint_testing::WriteBytes;
using ::testing::HasSubstr;

// A manifest of a two-shard checkpoint whose files need not exist.
CheckpointManifest TwoShards() {
  CheckpointManifest manifest = checkpoint_testing::Manifest(Config(), 2);
  for (uint32_t s = 0; s < 2; ++s) {
    CheckpointFile* file = manifest.add_files();
    file->set_name(absl::StrCat("shard-0000", s, "-of-00002.rows"));
    file->set_shard(s);
    file->set_bytes(100 + s);
    file->set_crc32(0xdeadbeef + s);
    file->set_rows(7 + s);
  }
  return manifest;
}

class CheckpointManifestTest : public checkpoint_testing::CheckpointDirTest {
 protected:
  // Writes `manifest` without WriteManifest's checks.
  void WriteRaw(const CheckpointManifest& manifest) const {
    std::string text;
    ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(manifest, &text));
    fs::create_directories(dir_);
    WriteBytes(dir_ + "/MANIFEST", text);
  }

  // Expects ReadManifest to refuse dir_'s manifest with `code`, naming it and saying `what`.
  void ExpectRefused(absl::StatusCode code, const std::string& what) const {
    const absl::StatusOr<CheckpointManifest> manifest = ReadManifest(dir_);
    EXPECT_EQ(manifest.status().code(), code) << manifest.status();
    EXPECT_THAT(manifest.status().message(), HasSubstr(dir_ + "/MANIFEST"));
    EXPECT_THAT(manifest.status().message(), HasSubstr(what));
  }
};

TEST(CheckpointNameTest, PadsToSixDigits) {
  EXPECT_EQ(CheckpointName(3), "ckpt-000003");
  EXPECT_EQ(CheckpointName(1234567), "ckpt-1234567");
}

TEST_F(CheckpointManifestTest, WriteThenReadRoundTrips) {
  const CheckpointManifest written = TwoShards();
  ASSERT_TRUE(WriteManifest(dir_, written).ok());  // creates the directory
  absl::StatusOr<CheckpointManifest> read = ReadManifest(dir_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->SerializeAsString(), written.SerializeAsString());
  EXPECT_FALSE(fs::exists(dir_ + "/MANIFEST.tmp"));
}

TEST_F(CheckpointManifestTest, RefusesAMissingManifest) {
  fs::create_directories(dir_);
  ExpectRefused(absl::StatusCode::kNotFound, "cannot open");
}

TEST_F(CheckpointManifestTest, RefusesAGarbledManifest) {
  fs::create_directories(dir_);
  WriteBytes(dir_ + "/MANIFEST", "format_version: 1\nconfig { dim: \"three\" }\n");
  ExpectRefused(absl::StatusCode::kDataLoss, "not a text-format psrec.CheckpointManifest: line 2");
  WriteBytes(dir_ + "/MANIFEST", std::string("\x00\xff\x13garbage", 10));
  ExpectRefused(absl::StatusCode::kDataLoss, "not a text-format psrec.CheckpointManifest");
}

TEST_F(CheckpointManifestTest, RefusesAnotherFormatVersion) {
  CheckpointManifest manifest = TwoShards();
  manifest.set_format_version(kCheckpointFormatVersion + 1);
  WriteRaw(manifest);
  ExpectRefused(absl::StatusCode::kDataLoss,
                absl::StrCat("format version ", kCheckpointFormatVersion + 1));
  const absl::Status written = WriteManifest(dir_, manifest);
  EXPECT_EQ(written.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(written.message(), HasSubstr("could not be read back"));
}

TEST_F(CheckpointManifestTest, RefusesABadFileList) {
  const CheckpointManifest good = TwoShards();
  const struct {
    void (*damage)(CheckpointManifest*);
    const char* what;
  } cases[] = {
      {[](CheckpointManifest* m) { m->set_num_shards(3); }, "lists 2 files for 3 shards"},
      {[](CheckpointManifest* m) { m->set_num_shards(0); }, "num_shards is 0"},
      {[](CheckpointManifest* m) {
         m->mutable_files(1)->set_name("../ckpt-000001/shard-00001-of-00002.rows");
       },
       "is not a plain file name"},
      {[](CheckpointManifest* m) { m->mutable_files(1)->set_name("MANIFEST"); },
       "is not a plain file name"},
      {[](CheckpointManifest* m) { m->mutable_files()->SwapElements(0, 1); }, "is for shard 1"},
      {[](CheckpointManifest* m) { m->mutable_files(1)->set_name(m->files(0).name()); },
       "is listed for two shards"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    CheckpointManifest manifest = good;
    c.damage(&manifest);
    WriteRaw(manifest);
    ExpectRefused(absl::StatusCode::kDataLoss, c.what);
    EXPECT_EQ(WriteManifest(dir_, manifest).code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(CheckpointConfigDifferencesTest, ClusterShapeEpochsAndDataDirMayDiffer) {
  const JobConfig config = Config();
  EXPECT_TRUE(
      CheckpointConfigDifferences(config, checkpoint_testing::OnAnotherCluster(config)).empty());
}

TEST(CheckpointConfigDifferencesTest, NamesEachFieldThatDiffers) {
  const JobConfig config = Config();
  JobConfig dim = config;
  dim.set_dim(4);
  FillTableSpecs(&dim);
  EXPECT_THAT(CheckpointConfigDifferences(config, dim),
              testing::Contains(HasSubstr("dim: 3 vs 4")));

  JobConfig model = config;
  model.set_model(MLP);
  model.set_hidden(10);
  FillTableSpecs(&model);
  EXPECT_THAT(CheckpointConfigDifferences(config, model),
              testing::Contains(HasSubstr("model: BIAS vs MLP")));

  JobConfig optimizer = config;
  optimizer.mutable_optimizer()->Clear();
  optimizer.mutable_optimizer()->set_kind(SGD);
  optimizer.mutable_optimizer()->set_lr(0.01f);
  EXPECT_THAT(CheckpointConfigDifferences(config, optimizer),
              testing::Contains(HasSubstr("optimizer")));

  JobConfig offset = config;
  offset.set_rating_offset(3.25f);
  EXPECT_THAT(CheckpointConfigDifferences(config, offset),
              testing::ElementsAre(HasSubstr("rating_offset: 3.5 vs 3.25")));
}

TEST(FindLatestCheckpointTest, PicksTheMostEpochsWithAManifest) {
  const fs::path root =
      fs::path(::testing::TempDir()) / absl::StrCat("psrec_find_latest_", ::getpid());
  fs::remove_all(root);
  for (const char* name :
       {"ckpt-000001", "ckpt-999999", "ckpt-1000000", "ckpt-1000001", "ckpt-x2000000", "other"}) {
    fs::create_directories(root / name);
    if (std::string(name) != "ckpt-1000001") WriteBytes((root / name / "MANIFEST").string(), "");
  }
  // ckpt-1000001 is incomplete (no MANIFEST); the numbers compare as numbers, not as names.
  absl::StatusOr<std::string> latest = FindLatestCheckpoint(root.string());
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, (root / "ckpt-1000000").string());

  // A tie goes to the larger name, whatever order the directory lists them in; a number of more
  // than 19 digits is not one.
  for (const char* name : {"ckpt-0001000000", "ckpt-00000000000009999999"}) {
    fs::create_directories(root / name);
    WriteBytes((root / name / "MANIFEST").string(), "");
  }
  latest = FindLatestCheckpoint(root.string());
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(*latest, (root / "ckpt-1000000").string());

  fs::remove_all(root);
  fs::create_directories(root / "ckpt-000004");
  latest = FindLatestCheckpoint(root.string());
  EXPECT_EQ(latest.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(latest.status().message(), HasSubstr(root.string()));

  fs::remove_all(root);
  latest = FindLatestCheckpoint(root.string());
  EXPECT_EQ(latest.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(latest.status().message(), HasSubstr(root.string()));
}

}  // namespace
}  // namespace psrec
