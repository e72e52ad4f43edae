// The step handlers. Each takes the prepared Step and the step's spec; failures are thrown as
// sdk::StepError.
#pragma once

#include <capstan/sdk/plugin.h>

#include "step.h"

namespace capstan::plugins::kubernetes {

void rolling_deploy(Step& step);
void rolling_rollback(Step& step);
void canary_deploy(Step& step);
void canary_delete(Step& step);
void blue_green_deploy(Step& step);
void blue_green_swap(Step& step);
void blue_green_stage_scale_down(Step& step);
void apply(Step& step);
void scale(Step& step);
void delete_resources(Step& step);
void dry_run(Step& step);

} // namespace capstan::plugins::kubernetes
