// JSON Schemas of the steps' specs, with Harness's field names.
#pragma once

namespace capstan::plugins::kubernetes::schemas {

extern const char* const kRollingDeploy;
extern const char* const kRollingRollback;
extern const char* const kCanaryDeploy;
extern const char* const kCanaryDelete;
extern const char* const kBlueGreenDeploy;
extern const char* const kBGSwapServices;
extern const char* const kBlueGreenStageScaleDown;
extern const char* const kApply;
extern const char* const kScale;
extern const char* const kDelete;
extern const char* const kDryRun;

} // namespace capstan::plugins::kubernetes::schemas
