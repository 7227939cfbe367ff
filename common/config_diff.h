// Comparing two job configs field by field, for the roles that must agree on one.
#ifndef PSREC_COMMON_CONFIG_DIFF_H_
#define PSREC_COMMON_CONFIG_DIFF_H_

#include <string>
#include <vector>

#include "proto/config.pb.h"

namespace psrec {

// Lists the fields in which `a` and `b` differ, as "dim: 30 vs 32", for registration errors.
std::vector<std::string> ConfigDifferences(const JobConfig& a, const JobConfig& b);

}  // namespace psrec

#endif  // PSREC_COMMON_CONFIG_DIFF_H_
