// The optimizer part of the job config: its defaults and its checks, shared by every role that
// builds or reads a config (the flags, the servers, the in-process store).
#ifndef PSREC_COMMON_OPTIMIZER_CONFIG_H_
#define PSREC_COMMON_OPTIMIZER_CONFIG_H_

#include "absl/status/status.h"
#include "proto/config.pb.h"

namespace psrec {

// Fills unset fields with defaults (adam: b1 0.9, b2 0.999, eps 1e-8; adagrad: eps 1e-10,
// initial_accumulator 0.1) and rejects an unknown kind, lr <= 0, or betas outside [0, 1).
// A field set to 0 keeps it (the fields have presence). Also
// rejects a non-finite lr, a negative or non-finite epsilon, and a negative initial_accumulator.
// Only the fields the kind uses are filled and checked. Errors are InvalidArgument naming the
// field and its value.
absl::Status ResolveOptimizerConfig(OptimizerConfig* config);

}  // namespace psrec

#endif  // PSREC_COMMON_OPTIMIZER_CONFIG_H_
