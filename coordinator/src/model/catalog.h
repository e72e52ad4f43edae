// Checks across objects, at apply time: every reference points at an object that exists (in the
// store or in the same apply) and is of the right type; a service keeps its deployment model; a
// pipeline's stages use steps of their service's model. Nothing is applied when one fails.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/object.h"

namespace capstan::model {

// The latest live (not deleted) model of a stored object; nullopt when there is none.
using StoredModel =
    std::function<std::optional<nlohmann::json>(const std::string& kind, const std::string& id)>;

std::vector<Problem> check_batch(const std::vector<Object>& batch, const StoredModel& stored);

// The model of a reference's target: from the batch first, then the store.
std::optional<nlohmann::json> find_model(const std::vector<Object>& batch,
                                         const StoredModel& stored, const std::string& kind,
                                         const std::string& id);

} // namespace capstan::model
