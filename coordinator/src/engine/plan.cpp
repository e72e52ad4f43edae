// Flattening a pipeline into rows.
#include "engine/plan.h"

#include "model/step_specs.h"

namespace capstan::engine {

namespace {

void add_rows(StagePlan& plan, const std::vector<model::Node>& nodes, int parent,
              const std::string& section, const std::string& prefix,
              const std::vector<int>& ancestors, std::vector<int>& out) {
  for (const auto& node : nodes) {
    int index = static_cast<int>(plan.rows.size());
    PlanRow row;
    row.node = &node;
    row.parent = parent;
    row.section = section;
    row.ancestors = ancestors;
    // Parallel blocks have no name of their own: their entries keep the enclosing prefix.
    row.path = node.kind == model::NodeKind::kParallel ? prefix + "parallel" + std::to_string(index)
                                                       : prefix + node.identifier;
    plan.rows.push_back(row);
    out.push_back(index);
    if (node.kind == model::NodeKind::kStep) continue;
    std::vector<int> inner = {index};
    inner.insert(inner.end(), ancestors.begin(), ancestors.end());
    const std::string child_prefix =
        node.kind == model::NodeKind::kStepGroup ? prefix + node.identifier + "." : prefix;
    std::vector<int> children;
    add_rows(plan, node.children, index, section, child_prefix, inner, children);
    plan.rows[static_cast<std::size_t>(index)].children = children;
    if (!node.rollback.empty()) {
      std::vector<int> rollback;
      add_rows(plan, node.rollback, index, "rollback", child_prefix, inner, rollback);
      plan.rows[static_cast<std::size_t>(index)].rollback = rollback;
    }
  }
}

} // namespace

std::vector<StagePlan> build_plan(const model::Pipeline& pipeline) {
  std::vector<StagePlan> out;
  for (const auto& stage : pipeline.stages) {
    StagePlan plan;
    plan.stage = &stage;
    add_rows(plan, stage.steps, -1, "steps", "", {}, plan.top);
    add_rows(plan, stage.rollback_steps, -1, "rollback", "", {}, plan.rollback_top);
    out.push_back(std::move(plan));
  }
  return out;
}

std::vector<store::StepRecord> initial_records(const std::vector<StagePlan>& plan) {
  std::vector<store::StepRecord> out;
  for (std::size_t si = 0; si < plan.size(); ++si) {
    const auto& sp = plan[si];
    for (std::size_t ri = 0; ri < sp.rows.size(); ++ri) {
      const auto& row = sp.rows[ri];
      store::StepRecord s;
      s.stage_index = static_cast<int>(si);
      s.step_index = static_cast<int>(ri);
      s.stage_identifier = sp.stage->identifier;
      s.identifier = row.path;
      s.name = row.node->kind == model::NodeKind::kParallel ? "parallel" : row.node->name;
      s.type = row.node->kind == model::NodeKind::kStep ? row.node->type
                                                        : model::node_kind_name(row.node->kind);
      s.kind = model::node_kind_name(row.node->kind);
      s.parent = row.parent;
      s.section = row.section;
      s.timeout_ms = row.node->kind == model::NodeKind::kStep ? row.node->timeout.count() : 0;
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::shared_ptr<const ExecutionPlan> make_execution_plan(model::Pipeline pipeline) {
  auto out = std::make_shared<ExecutionPlan>();
  out->pipeline = std::move(pipeline);
  out->stages = build_plan(out->pipeline);
  std::size_t offset = 0;
  for (auto& sp : out->stages) {
    out->offset.push_back(offset);
    offset += sp.rows.size();
    for (auto& row : sp.rows) {
      if (row.node->kind == model::NodeKind::kStep && !model::holds_expression(row.node->spec)) {
        row.fixed_spec = row.node->spec.dump();
      }
    }
    auto add_type = [&](const model::Node& step) { out->step_types.insert(step.type); };
    model::for_each_step(sp.stage->steps, add_type);
    model::for_each_step(sp.stage->rollback_steps, add_type);
  }
  out->initial_steps = initial_records(out->stages);
  return out;
}

} // namespace capstan::engine
