// The coordinator's task and delegate metrics, written by the engine thread and read by /metrics.
#pragma once

#include "capstan/wire/metrics.h"

namespace capstan::engine {

struct Metrics {
  wire::Counter tasks_dispatched;
  wire::Counter tasks_succeeded;
  wire::Counter tasks_failed; // failed, aborted, or lost with their delegate
  wire::Counter tasks_requeued;
  wire::Counter delegate_reconnects; // a known delegate process attached again
  wire::Counter delegates_lost;
  wire::Counter hellos_refused;
  wire::Histogram task_duration;
  wire::Gauge tasks_running;
  wire::Gauge tasks_queued;
  wire::Gauge delegates_connected;
  wire::Gauge delegates_draining;
  wire::Gauge slots_total;
};

} // namespace capstan::engine
