// The table of subcommands and their help texts.
#include "commands.h"

namespace capstan::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> list = {
      {"up", "start the local coordinator, delegate and sandbox cluster in the background",
       R"(Usage: capstan up [--api-port PORT] [--bind ENDPOINT] [--plugin-dir DIR]... [--slots N]
                  [--name NAME] [--sandbox-port PORT] [--no-sandbox]

Starts a coordinator, one delegate with the bundled plugins and capstan-sandbox (an embedded
Kubernetes-compatible cluster, the default deployment target) as background processes under
the home (--home, default ~/.capstan): data in HOME/coordinator, HOME/delegate and
HOME/sandbox (its kubeconfig is HOME/sandbox/kubeconfig), logs in HOME/logs, pid files in
HOME/run. With the sandbox it also registers, through the coordinator's API, a K8sCluster
connector, an environment and a KubernetesDirect infrastructure all named 'sandbox' (namespace
default), so pipelines can deploy there without defining any; an object of the same kind and
identifier that differs (your own) is left as it is, and said so. Running it again when they are
up changes nothing.

Options:
  --api-port PORT      the coordinator's HTTP API port on 127.0.0.1; 0 picks one (default 7780)
  --bind ENDPOINT      the coordinator's wire endpoint; port 0 picks one
                       (default tcp://127.0.0.1:7700)
  --plugin-dir DIR     a plugin folder for the delegate (repeatable; default: the bundled plugins)
  --slots N            tasks the delegate runs at once (default: its CPU count)
  --name NAME          the delegate's name (default local)
  --sandbox-port PORT  the sandbox's HTTPS port on 127.0.0.1; 0 picks one (default 0)
  --no-sandbox         do not start the sandbox (deploy to real clusters only))",
       cmd_up},
      {"down", "stop the local coordinator, delegate and sandbox",
       R"(Usage: capstan down

Stops the delegate, the coordinator and the sandbox that 'capstan up' started under the home (SIGTERM, then
SIGKILL after 15 s). Their data and logs stay.)",
       cmd_down},
      {"apply", "create or update objects from YAML files",
       R"(Usage: capstan apply -f FILE|DIR [-f FILE|DIR]... [--dry-run]

Sends every YAML document of the files (a directory: its *.yaml and *.yml files, sorted) to the
coordinator. All documents are validated first; if any has a problem nothing is applied and
each problem is printed as FILE:LINE:COLUMN: message (exit code 2).

Options:
  -f, --filename PATH  a file or directory (repeatable)
  --dry-run            validate and show what would change, without applying)",
       cmd_apply},
      {"run", "run a pipeline and follow it",
       R"(Usage: capstan run PIPELINE [--set NAME=VALUE]... [--inputs FILE] [--detach]

Starts an execution of the pipeline and follows it until it ends: on a terminal, a live tree of
its stages and steps under the scrolling logs (execution inputs are asked for there); piped, one
line per step change and the log lines. Exit code 0 only when it succeeds, 1 when it fails or is
aborted, 2 when the inputs are wrong.

Runtime inputs (<+input> in the pipeline, or in the service, environment and infrastructure a
stage uses) take their values from --set and --inputs; the others use their default.

Options:
  --set NAME=VALUE     a runtime input or pipeline variable (repeatable). NAME is the input's
                       full name (pipeline.stages.deploy.spec.service.serviceInputs.
                       serviceDefinition.spec.artifacts.primary.sources.myapp.spec.tag) or any
                       unambiguous end of it (tag, myapp.spec.tag)
  --inputs FILE        runtime inputs in Harness's inputs YAML (pipeline: {...}, or an input set)
  --detach             print the execution id and return at once)",
       cmd_run},
      {"get", "show applied objects, or the YAML of one",
       R"(Usage: capstan get KIND [ID] [--version N] [--history]

KIND is one of pipeline, service, environment (env), infrastructure (infra), connector, secret,
userGroup, gitopsCluster (clusters), environmentGroup (envgroup), application (app),
applicationSet (appset) (plural forms work too).
Without ID, lists the objects of the kind. With ID and -o yaml, prints the object exactly
as it was applied (secrets: their metadata only; a secret's value is never shown).

Options:
  --version N          that version of the object instead of the latest
  --history            the object's versions: when, by whom, and deletions)",
       cmd_get},
      {"delete", "delete an applied object",
       R"(Usage: capstan delete KIND ID [--cascade=false]

Deletes the object (its history stays). Refused while other objects refer to it: they are
named, with where they refer to it.

An application whose metadata.finalizers has resources-finalizer.argocd.argoproj.io (as
ApplicationSets' applications have) is not deleted at once: it shows as Deleting until a
delegate has deleted its resources from the cluster, then it goes; if its delegate is lost or
the coordinator restarts meanwhile, another delegate finishes the deletion.

Options:
  --cascade=false      delete the application at once and leave its resources in the cluster
                       (also lets go of an application stuck in Deleting))",
       cmd_delete},
      {"audit", "who applied, deleted, ran, approved or aborted what, and when",
       R"(Usage: capstan audit [--by USER] [--action ACTION] [--kind KIND] [--target ID]
                     [--limit N]

Newest first. ACTION is apply, delete, run, approve, reject, abort, intervene or input.
--target matches an object's identifier or an execution id.)",
       cmd_audit},
      {"approve", "approve or reject an approval an execution waits for",
       R"(Usage: capstan approve EXECUTION [--reject] [--comment TEXT] [--input NAME=VALUE]...
                       [--step STEP]

Answers the HarnessApproval step the execution waits at, as the CLI's user (--user, or
$CAPSTAN_USER, or your login name), who must be one of its approvers. The step succeeds once
minimumCount approvers approved; one rejection fails it (its failure strategy decides what
follows).

Options:
  --reject             reject instead of approving
  --comment TEXT       recorded with the answer and in the audit trail
  --input NAME=VALUE   a value for one of the step's approverInputs (repeatable)
  --step STEP          which approval, when several wait (STEP or STAGE.STEP))",
       cmd_approve},
      {"interventions", "list what waits for someone, and resolve manual interventions",
       R"(Usage: capstan interventions [list]
       capstan interventions resolve EXECUTION ACTION [--step STEP] [--comment TEXT]

list shows every approval, manual intervention, execution input and queued deployment that
active executions wait for. resolve answers a step waiting for manual intervention (or ends a
Wait step early) with ACTION: Retry, Ignore, MarkAsSuccess, MarkAsFailure, Abort, StageRollback
or PipelineRollback.)",
       cmd_interventions},
      {"input", "give the execution inputs a running step asks for",
       R"(Usage: capstan input EXECUTION --set NAME=VALUE... [--step STEP]

Answers the <+input>.executionInput() questions of the stage or step the execution waits at.
NAME is the input's name or any unambiguous end of its full name; inputs left out take their
default.)",
       cmd_input},
      {"executions", "list, inspect or abort executions",
       R"(Usage: capstan executions list [--pipeline ID] [--status STATUS] [--limit N]
       capstan executions get EXECUTION
       capstan executions abort EXECUTION

EXECUTION is an execution id or a unique prefix of at least 4 characters. An id begins with
its creation time, so executions started close together share their first characters.)",
       cmd_executions},
      {"logs", "print the logs of an execution",
       R"(Usage: capstan logs EXECUTION [--step ID] [-f]

Prints the execution's log lines, each prefixed with its STAGE.STEP (without prefix when
--step selects one step).

Options:
  --step ID            only this step (STEP or STAGE.STEP)
  -f, --follow         keep printing until the execution ends)",
       cmd_logs},
      {"delegates", "list delegates and the step types they provide",
       R"(Usage: capstan delegates [-o wide|json|yaml]

Connected delegates first (STATUS Connected, or Draining when the delegate got SIGTERM and
takes no new step), then ones seen before that are disconnected. RUNNING is tasks in flight
over the delegate's slots.)",
       cmd_delegates},
      {"step-types", "list the step types pipelines can use, and their spec schemas",
       R"(Usage: capstan step-types [TYPE] [-o json|yaml]

The coordinator's catalog of step types: every type a delegate has announced (kept when the
delegate leaves, so pipelines using it can still be applied), the plugin and version that
provides it, the delegate that announced it last, and whether its spec schema is known (specs
are checked against it by 'capstan apply'); then the types the coordinator runs itself. With
TYPE, that type alone; '-o yaml' shows its spec schema.)",
       cmd_step_types},
      {"tokens", "create, list or revoke delegate tokens",
       R"(Usage: capstan tokens create NAME
       capstan tokens list [-o json|yaml]
       capstan tokens revoke NAME

A delegate presents a token when it connects (capstan-delegate --token-file FILE). 'create'
prints the new token once: only a hash of it is kept. 'revoke' drops the delegates that use it
at once, and their reconnects are refused. The coordinator creates a token named "default" on
its first start, in <its data dir>/delegate-token.)",
       cmd_tokens},
      {"prs", "list the pull requests GitOps steps opened",
       R"(Usage: capstan prs list [--repository URL] [--state open|merged|closed]
                         [--execution ID] [-o wide|json|yaml]
       capstan prs get NUMBER [--repository URL] [-o json|yaml]

Pull requests opened, merged or reverted by UpdateReleaseRepo, MergePR and RevertPR steps,
newest first. For the local provider (a Git connector) the coordinator's record is the pull
request itself; for GitHub and GitLab it mirrors what the step saw. NUMBER is unique per
repository: give --repository when several repositories have that number.)",
       cmd_prs},
      {"apps", "list, inspect, diff, sync, refresh or roll back GitOps applications",
       R"(Usage: capstan apps list [-p PROJECT]... [-l SELECTOR] [-o wide|json|yaml]
       capstan apps get NAME [-o json|yaml]
       capstan apps diff NAME [-o json|yaml]
       capstan apps sync NAME [--prune] [--dry-run] [--apply-only] [--force] [--revision REV]
       capstan apps refresh NAME
       capstan apps history NAME [-o json|yaml]
       capstan apps rollback NAME HISTORY-ID
       capstan apps terminate-op NAME

Applications are Argo CD Application documents applied with 'capstan apply -f'. Each is
reconciled by one delegate (DELEGATE); SYNC, HEALTH and REVISION are what it reported last.
'diff' lists the resources that differ from Git and exits 1 when there are any. 'sync' runs a
sync now on that delegate and waits for its end (exit 1 unless it succeeded); 'refresh' reads
Git and compares again at once; 'rollback' syncs to the revision of a history entry (turn
automated sync off first, or the next poll brings the target revision back). 'history' lists
the deployments (syncs that succeeded), kept by the coordinator: it survives the application
moving to another delegate. 'terminate-op' stops the sync running now (it ends Failed,
"operation terminated"); with none in progress it fails saying so. SYNC shows Deleting while
a deleted application waits for its resources to be deleted (see 'capstan delete --help').

Options of 'list' (as argocd app list's):
  -p, --project PROJECT    only the applications of that project (spec.project); repeat it or
                           separate projects with commas for any of several
  -l, --selector SELECTOR  only the applications whose metadata.labels match the label
                           selector, as kubectl's -l: key=value (or ==), key!=value,
                           'key in (a,b)', 'key notin (a,b)', key (has it), '!key' (has it not),
                           key>N, key<N; a comma joins requirements that must all hold
                           (e.g. -l 'tier=web,env notin (prod)'). A malformed selector is an
                           error naming the character where it goes wrong.)",
       cmd_apps},
      {"appsets", "list, inspect, refresh or delete ApplicationSets",
       R"(Usage: capstan appsets list [-o json|yaml]
       capstan appsets get NAME [-o json|yaml]
       capstan appsets refresh NAME
       capstan appsets delete NAME

ApplicationSets are Argo CD ApplicationSet documents applied with 'capstan apply -f'. Each is
rendered by one delegate (DELEGATE), which reads its git generators' repositories, renders it
again when one moves, and reports the Applications it generates; the coordinator creates,
updates and deletes them to follow (within spec.syncPolicy.applicationsSync). An existing
application the set does not own is never overwritten. UP-TO-DATE is the ResourcesUpToDate
condition; MESSAGE the error when one occurred (the applications are then left as they are).
'refresh' renders it again now. 'delete' deletes the set and the applications it generated,
and with them their resources in the clusters unless the set's
spec.syncPolicy.preserveResourcesOnDeletion is true.)",
       cmd_appsets},
      {"backup", "write a consistent copy of the coordinator's database to a file",
       R"(Usage: capstan backup FILE [--force]

Asks the coordinator for a copy of its database (GET /api/v1/backup) and writes it to FILE. The
coordinator makes the copy while it runs, executions and all: the copy is the database as it
was at one moment, every execution committed before it. FILE appears whole or not at all (it is
written beside FILE and renamed, mode 0600); an existing FILE is replaced only with --force.

The copy holds the applied objects and their versions, executions with their logs, the audit
trail, delegate tokens (as hashes) and secret values sealed by the coordinator's secrets key.
That key is NOT in it: without <data-dir>/secrets.key the secrets cannot be read. Back the key
up separately, once (it does not change), and keep it apart from the copies.

To restore: stop the coordinator, put the copy in place as <data-dir>/capstan.db (removing any
capstan.db-wal and capstan.db-shm there), put secrets.key back if it was lost, and start it.

Options:
  --force  replace FILE if it exists)",
       cmd_backup},
      {"version", "print the CLI and coordinator versions", "Usage: capstan version", cmd_version},
  };
  return list;
}

} // namespace capstan::cli
