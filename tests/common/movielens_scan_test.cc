#include "common/movielens_scan.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/rng.h"
#include "gtest/gtest.h"

namespace psrec {
namespace {

const char* Scan(const std::string& text, Layout layout, ScannedRating* out) {
  return ScanRatingLine(text.data(), text.data() + text.size(), layout, out);
}

TEST(ScanRatingLineTest, CommonFormInEveryLayout) {
  for (const auto& [layout, line] : std::vector<std::pair<Layout, std::string>>{
           {Layout::kCsv, "7,50,4.0,964982703\n3,20"},
           {Layout::kDat, "7::50::4.0::964982703\n3::20"},
           {Layout::kUData, "7\t50\t4.0\t964982703\n3\t20"}}) {
    ScannedRating r;
    const char* next = Scan(line, layout, &r);
    ASSERT_NE(next, nullptr) << line;
    EXPECT_EQ(std::string(next), line.substr(line.find('\n') + 1));
    EXPECT_EQ(r.user_id, 7);
    EXPECT_EQ(r.item_id, 50);
    EXPECT_EQ(r.rating, 4.0f);
    EXPECT_EQ(r.timestamp, 964982703);
  }
}

TEST(ScanRatingLineTest, LineEnds) {
  ScannedRating r;
  const std::string crlf = "1,2,3.5,-4\r\nrest";
  EXPECT_EQ(std::string(Scan(crlf, Layout::kCsv, &r)), "rest");
  EXPECT_EQ(r.timestamp, -4);
  const std::string last = "1,2,3,4";
  EXPECT_EQ(Scan(last, Layout::kCsv, &r), last.data() + last.size());
  EXPECT_EQ(r.rating, 3.0f);
}

// Everything the fast path does not take goes to the general parser, which either accepts it
// (the first group) or names the error.
TEST(ScanRatingLineTest, LeavesEverythingElseToTheGeneralParser) {
  for (const std::string line :
       {".5", "5.", "5e0", "0004.50001", "+4"}) {  // valid ratings outside the common form
    ScannedRating r;
    EXPECT_EQ(Scan(absl::StrCat("1,2,", line, ",3\n"), Layout::kCsv, &r), nullptr) << line;
  }
  for (const std::string line : {"",
                                 "\n",
                                 "\r\n",
                                 "1,2,3,4\r",
                                 "1,2,3,4x\n",
                                 "1,2,3,4,\n",
                                 "1,2,3\n",
                                 "1,2,,4\n",
                                 "-1,2,3,4\n",
                                 "1,-2,3,4\n",
                                 "1,2,3,+4\n",
                                 "1,2,3,-\n",
                                 "1,2,5.5,4\n",
                                 "1,2,0,4\n",
                                 "1,2,0.49,4\n",
                                 "1,2,nan,4\n",
                                 "1;2;3;4\n",
                                 "1234567890123456789,2,3,4\n",
                                 "1,2,3,1234567890123456789\n",
                                 " 1,2,3,4\n",
                                 "1,2,3,4 \n",
                                 "1,2,3.,4\n",
                                 "1,2,3..5,4\n"}) {
    ScannedRating r;
    EXPECT_EQ(Scan(line, Layout::kCsv, &r), nullptr) << absl::CEscape(line);
  }
  ScannedRating r;
  EXPECT_EQ(Scan("1:2::3::4\n", Layout::kDat, &r), nullptr);
  EXPECT_EQ(Scan("1::2::3::4:\n", Layout::kDat, &r), nullptr);
  EXPECT_EQ(Scan("1,2,3,4\n", Layout::kUData, &r), nullptr);
  EXPECT_NE(Scan("123456789012345678,2,3,4\n", Layout::kCsv, &r), nullptr);  // 18 digits: taken
  EXPECT_EQ(r.user_id, 123456789012345678);
}

// On random lines in the common form, the fast path gives what strtoll and strtof give.
TEST(ScanRatingLineTest, AgreesWithTheCLibrary) {
  Rng rng(99);
  for (int trial = 0; trial < 20000; ++trial) {
    const int64_t user = static_cast<int64_t>(rng.Below(uint64_t{1} << (1 + rng.Below(50))));
    const int64_t item = static_cast<int64_t>(rng.Below(300000));
    const int64_t time = static_cast<int64_t>(rng.Below(uint64_t{1} << 40)) - (int64_t{1} << 20);
    const int decimals = static_cast<int>(rng.Below(4));
    uint64_t scale = 1;
    for (int i = 0; i < decimals; ++i) scale *= 10;
    const uint64_t mantissa = (scale + 1) / 2 + rng.Below(5 * scale - (scale + 1) / 2 + 1);
    std::string rating = absl::StrCat(mantissa / scale);
    if (decimals > 0)
      absl::StrAppend(&rating, ".", absl::StrCat(scale + mantissa % scale).substr(1));
    const std::string line = absl::StrCat(user, "::", item, "::", rating, "::", time, "\n");
    ScannedRating r;
    ASSERT_NE(Scan(line, Layout::kDat, &r), nullptr) << line;
    EXPECT_EQ(r.user_id, user);
    EXPECT_EQ(r.item_id, item);
    ASSERT_EQ(r.rating, std::strtof(rating.c_str(), nullptr)) << line;
    EXPECT_EQ(r.timestamp, time);
  }
}

TEST(IdIndexTest, FirstAppearanceOrderForSmallAndLargeIds) {
  IdIndex index;
  std::vector<int64_t> ids;
  const std::vector<int64_t> seen = {5,
                                     0,
                                     5,
                                     (int64_t{1} << 22) - 1,
                                     int64_t{1} << 22,
                                     7,
                                     9223372036854775807,
                                     0,
                                     int64_t{1} << 22,
                                     3000000};
  const std::vector<uint32_t> want = {0, 1, 0, 2, 3, 4, 5, 1, 3, 6};
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(index.Get(seen[i], &ids), want[i]) << i;
  EXPECT_EQ(ids, (std::vector<int64_t>{5, 0, (int64_t{1} << 22) - 1, int64_t{1} << 22, 7,
                                       9223372036854775807, 3000000}));
}

TEST(FileTextTest, ReadsEveryByte) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("psrec_scan_test_", ::getpid());
  std::filesystem::create_directories(dir);
  std::string bytes;
  for (uint32_t i = 0; i < 300000; ++i) bytes += static_cast<char>(i * 7919u % 256);
  for (const std::string& contents : {std::string(), std::string("x"), bytes}) {
    std::ofstream(dir / "f", std::ios::binary) << contents;
    absl::StatusOr<FileText> file = FileText::Read((dir / "f").string());
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ(file->text(), contents);
  }
  absl::StatusOr<FileText> missing = FileText::Read((dir / "missing").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("missing: cannot open"), absl::string_view::npos);
  absl::StatusOr<FileText> directory = FileText::Read(dir.string());
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace psrec
