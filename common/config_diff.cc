#include "common/config_diff.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"

namespace psrec {

std::vector<std::string> ConfigDifferences(const JobConfig& a, const JobConfig& b) {
  std::vector<std::string> out;
  const auto* descriptor = JobConfig::descriptor();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    google::protobuf::util::MessageDifferencer differ;
    if (differ.CompareWithFields(a, b, {field}, {field})) continue;
    if (field->is_repeated()) {
      out.push_back(absl::StrCat(field->name(), ": differ"));
      continue;
    }
    std::string left, right;
    google::protobuf::TextFormat::PrintFieldValueToString(a, field, -1, &left);
    google::protobuf::TextFormat::PrintFieldValueToString(b, field, -1, &right);
    out.push_back(absl::StrCat(field->name(), ": ", left, " vs ", right));
  }
  return out;
}

}  // namespace psrec
