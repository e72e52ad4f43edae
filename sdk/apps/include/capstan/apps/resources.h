// Identity of the objects an application manages, and the tracking annotation that ties a
// live object to its application (Argo CD's argocd.argoproj.io/tracking-id).
#pragma once

#include <nlohmann/json.hpp>

#include <compare>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "capstan/apps/application.h"
#include "capstan/apps/render.h"

namespace capstan::apps {

inline constexpr const char* kTrackingAnnotation = "argocd.argoproj.io/tracking-id";
inline constexpr const char* kHookAnnotation = "argocd.argoproj.io/hook";
inline constexpr const char* kHookDeletePolicyAnnotation = "argocd.argoproj.io/hook-delete-policy";
inline constexpr const char* kSyncWaveAnnotation = "argocd.argoproj.io/sync-wave";
inline constexpr const char* kSyncOptionsAnnotation = "argocd.argoproj.io/sync-options";
inline constexpr const char* kCompareOptionsAnnotation = "argocd.argoproj.io/compare-options";

struct ResourceKey {
  std::string group; // "" for the core group
  std::string kind;
  std::string namespace_;
  std::string name;

  static ResourceKey of(const nlohmann::json& object);
  // "apps/Deployment/web/frontend", "/ConfigMap/web/settings", "/Namespace//web"
  std::string str() const;
  auto operator<=>(const ResourceKey&) const = default;
};

// "apps" of "apps/v1", "" of "v1".
std::string api_group(std::string_view api_version);

// "<app>:<group>/<kind>:<namespace>/<name>", as Argo CD writes it.
std::string tracking_id(const std::string& app, const ResourceKey& key);
// The application a live object belongs to: its tracking id's application, when the id also
// names the object itself (a copied object carrying another's id is nobody's).
std::optional<std::string> tracked_by(const nlohmann::json& object);

// Whether a kind is namespaced; given by API discovery, defaulting to Kubernetes' own kinds.
using NamespacedFn = std::function<bool(const std::string& api_version, const std::string& kind)>;
bool builtin_namespaced(const std::string& api_version, const std::string& kind);

// The desired objects as the application will apply them: namespaced objects without a
// namespace get the destination's, every object gets the tracking annotation, and two
// documents for one object are an error naming both (ComparisonError).
std::vector<DesiredObject> prepare_desired(const Application& app,
                                           std::vector<DesiredObject> objects,
                                           const NamespacedFn& namespaced = builtin_namespaced);

// The annotation's value, "" when absent.
std::string annotation(const nlohmann::json& object, std::string_view key);

} // namespace capstan::apps
