// An execution's plan: the pipeline's stages flattened into rows (steps, step groups, parallel
// blocks; `steps` then `rollbackSteps`), one row per stored step record, in the same order every
// time so a restarted coordinator lines rows and records up again.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "model/pipeline.h"
#include "store/records.h"

namespace capstan::engine {

struct PlanRow {
  const model::Node* node = nullptr;
  int parent = -1;            // row of the enclosing group or parallel block; -1 at the top
  std::string section;        // "steps" or "rollback"
  std::string path;           // "group.step": how expressions and the CLI name it
  std::vector<int> children;  // a group's steps, a parallel block's entries
  std::vector<int> rollback;  // a group's rollbackSteps
  std::vector<int> ancestors; // enclosing rows, innermost first
  // A step whose spec holds no expression: the spec as the request carries it, written once
  // per plan (set by make_execution_plan; empty otherwise).
  std::optional<std::string> fixed_spec;
};

struct StagePlan {
  const model::Stage* stage = nullptr;
  std::vector<PlanRow> rows;
  std::vector<int> top;          // the stage's `steps`
  std::vector<int> rollback_top; // the stage's `rollbackSteps`
};

// Rows of every stage. The plan points into `pipeline`, which must outlive it.
std::vector<StagePlan> build_plan(const model::Pipeline& pipeline);

// The stored records for a new execution's rows (status NotStarted).
std::vector<store::StepRecord> initial_records(const std::vector<StagePlan>& plan);

// A parsed pipeline with its plan, never changed once built: the executions of one applied
// pipeline version run without runtime inputs of their own share one.
struct ExecutionPlan {
  model::Pipeline pipeline;
  std::vector<StagePlan> stages;   // points into `pipeline`
  std::vector<std::size_t> offset; // each stage's first row in an execution's step records
  std::vector<store::StepRecord> initial_steps; // a new execution's step records
  std::set<std::string> step_types;             // of every step, rollback steps included
};

// Builds the plan in place, where it stays (it points into its own pipeline).
std::shared_ptr<const ExecutionPlan> make_execution_plan(model::Pipeline pipeline);

} // namespace capstan::engine
