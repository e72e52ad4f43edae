// The JSON shapes the API returns for stored records.
#pragma once

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "store/records.h"

namespace capstan::api {

nlohmann::json to_json(const store::ExecutionRecord& e, bool with_steps);
nlohmann::json to_json(const store::LogRecord& l);
nlohmann::json to_json(const store::ObjectRecord& o, bool with_content);
nlohmann::json to_json(const engine::DelegateView& d);
nlohmann::json to_json(const store::DelegateRecord& d);
nlohmann::json to_json(const store::AuditRecord& a);

} // namespace capstan::api
