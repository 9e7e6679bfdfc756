#!/usr/bin/env python3
"""Generates bpmn/dr-failover.bpmn, bpmn/dr-failback.bpmn and bpmn/dr-drill.bpmn.

Run from the repository root: python3 bpmn/tools/generate.py
The contract (job types, headers, variables, errors, forms) is docs/jobs.md; docs/bpmn.md explains
the processes. Check the result with scripts/lint-bpmn.sh and cargo test --test bpmn_static.
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(__file__))

from layout import GAP, Frag, Model, attach, container, pad, seq, single, to_xml  # noqa: E402
from patterns import (  # noqa: E402
    approval, end, error_def, explicit_yes, guarded_task, loop, no_answer, optional_await, report,
    service, start, step, throw_aborted, timer_def, user_task, with_comment, with_manual, gateway,
)

ROOT = os.path.join(os.path.dirname(__file__), "..")

ERRORS = {
    "INVALID_INPUT": "Invalid input",
    "MANUAL_STEP_REQUIRED": "Manual step required",
    "DRILL_NOT_ALLOWED": "Drill not allowed",
    "ABORTED": "Aborted",
}


def error_elements(codes):
    return [
        f'<bpmn:error id="Error_{c}" name="{ERRORS[c]}" errorCode="{c}" />' for c in codes
    ]


ABORT_REASON = '(if abortReason = null then "aborted" else abortReason)'


def process_abort_tail(m, base, process, cleanup=None):
    """Report aborted (reason: abortReason, set by the decision that aborted) -> end."""
    reason = f"= {ABORT_REASON}" + (f' + ". {cleanup}"' if cleanup else "")
    return [
        report(m, m.process_id, "ReportAborted_" + base, "Report aborted", process, "aborted",
               reason),
        end(m, m.process_id, "EndAborted_" + base, "Aborted"),
    ]


def step_(m, parent, base, title, build, process, can_abort_inside=True, tail=None, doc=None):
    tail = tail if tail is not None else process_abort_tail(m, base, process)
    return step(m, parent, base, title, build, tail, can_abort_inside, doc=doc)


def inner(m, parent, frags_fn):
    """Sub-process content: start -> frags -> end."""
    frags = frags_fn(parent)
    s = start(m, parent, "Start_" + parent)
    e = end(m, parent, "End_" + parent, "Done")
    return seq(m, [single(s)] + frags + [single(e)])


def validate(m, process):
    t = service(m, m.process_id, "ValidateInput", "Validate input", "c8dr.validate-input",
                {"process": process})
    return guarded_task(m, m.process_id, t, "Error_INVALID_INPUT", "invalid-input", process,
                        "InvalidInput")


def final_report(m, process):
    r = report(m, m.process_id, "Report", "Report completed", process, "completed", '= ""')
    e = end(m, m.process_id, "End", "Completed")
    return [single(r), single(e)]


def check_task(m, base, name, job, headers=None):
    return lambda p: service(m, p, base, name, job, headers, retries=5)


# ---------------------------------------------------------------------------------------------
# dr-failover

FAILOVER_DOC = """Failover after the loss of one region of a dual-region Camunda 8 installation \
(seed procedure: failover phase). Inputs: target, lostRegion, reason (+ optional approverGroup, \
autoApprove, verifyInterval, changeTimeout, approvalDue, reminderAfter; see docs/jobs.md).
Errors: INVALID_INPUT from Validate input ends the process through Report (outcome invalid-input). \
Every other BPMN error a step can throw (assess: INVALID_INPUT, SPLIT_BRAIN_RISK, \
SURVIVING_REGION_DEGRADED, CONCURRENT_CHANGE; remove brokers: INVALID_INPUT, SPLIT_BRAIN_RISK, \
CONCURRENT_CHANGE; await change: CHANGE_FAILED; disable exporters: CONCURRENT_CHANGE; checks: \
INVALID_INPUT) is caught by the step's catch-all boundary and goes to the operator decision \
(form c8dr-step-failed): retry re-runs the whole step (steps are idempotent), abort ends through \
Report (outcome aborted); an abort decided inside a step (verification timeout) is an error end \
event ABORTED caught by the step's ABORTED boundary. Approve failover and Confirm traffic rerouted \
are gates tested by the process: only decision = "approve" / trafficRerouted = true continue; a \
no, a missing or wrongly typed answer ends through Report (outcome rejected, with the reason) \
before any mutation. Deliberately \
left to incidents: technical job failures after their retries (unreachable target, 5xx), and any \
failure of c8dr.report / c8dr.notify (nothing sensible to route to; retry them in Operate)."""


def failover():
    m = Model("dr-failover", "DR failover: remove the lost region")
    P = m.process_id

    def assess(p):
        return [single(service(m, p, "AssessFailover", "Assess surviving region and plan",
                               "c8dr.assess-failover", retries=5))]

    def remove(p):
        return [
            single(service(m, p, "RemoveBrokers", "Remove lost brokers (force)",
                           "c8dr.remove-brokers")),
            loop(m, p, "AwaitRemoval", "Await broker removal",
                 check_task(m, "AwaitRemovalCheck", "Await cluster change", "c8dr.await-change"),
                 "= changeTimeout"),
            loop(m, p, "VerifyDegraded", "Verify degraded topology",
                 check_task(m, "VerifyDegradedCheck", "Verify topology (degraded)",
                            "c8dr.verify-topology", {"expect": "degraded"}),
                 "= changeTimeout"),
        ]

    def exporters(p):
        again = gateway(m, p, "DisableNext", None)
        disable = service(m, p, "DisableExporters", "Disable next lost exporter",
                          "c8dr.disable-exporters")
        body = optional_await(m, p, "ExporterChange", single(disable), "Await exporter change")
        done = gateway(m, p, "ExportersDone", "All disabled?")
        done_frag = single(done)
        done_frag.exit_cond, done_frag.exit_name = "= exportersDone = true", "yes"
        f = seq(m, [single(again), body, done_frag])
        m.flow(done, again, name="more", route="over45", default=True)
        f = pad(f, top=30)
        verify = loop(m, p, "VerifyExporters", "Verify exporters",
                      check_task(m, "VerifyExportersCheck", "Verify exporters (failover)",
                                 "c8dr.verify-exporters", {"expect": "failover"}),
                      "= changeTimeout")
        return [f, verify]

    frags = [
        single(start(m, P, "Start", "Region lost")),
        validate(m, "failover"),
        step_(m, P, "Assess", "Assess the surviving region",
              lambda sp: inner(m, sp, assess), "failover", can_abort_inside=False,
              doc="Topology of the surviving region, lost brokers by parity, dry-run of the "
                  "removal: the plan shown in the approval."),
        approval(m, P, "ApproveFailover", "Approve failover", "c8dr-approve-failover",
                 ("decision", '"approve"', '"reject"'), "Approved?", "approve",
                 "rejected by the approver", "failover", "rejected",
                 "Shows plan.brokersToRemove and the dry-run's expected topology."),
        approval(m, P, "ConfirmTraffic", "Confirm traffic rerouted", "c8dr-confirm-traffic",
                 ("trafficRerouted", "true", "false"), "Rerouted?", "rerouted",
                 "traffic is not rerouted to the surviving region (the operator answered no)",
                 "failover", "rejected",
                 "DNS / load balancers are outside c8dr: the operator confirms that traffic "
                 "goes to the surviving region. Only trafficRerouted = true continues."),
        step_(m, P, "RemoveBrokers", "Remove lost brokers from the Zeebe cluster",
              lambda sp: inner(m, sp, remove), "failover"),
        step_(m, P, "DisableExporters", "Disable the exporters to the lost region",
              lambda sp: inner(m, sp, exporters), "failover"),
    ] + final_report(m, "failover")
    seq(m, frags)
    roots = error_elements(["INVALID_INPUT", "ABORTED"])
    return to_xml(m, roots, FAILOVER_DOC)


# ---------------------------------------------------------------------------------------------
# dr-failback

FAILBACK_DOC = """Failback: bring the recreated region back (seed procedure: failback phase, \
eight steps). Inputs: target, recreatedRegion (+ optional approverGroup, autoApprove, \
verifyInterval, changeTimeout, snapshotTimeout, restoreTimeout, brokersVisibleTimeout, \
pausedWindowTimeout, approvalDue, reminderAfter; see docs/jobs.md).
Every gate is tested by the process: only an explicit yes continues (a no, a missing or wrongly \
typed answer ends through Report with the reason, before any further mutation). Aborts are error \
end events ABORTED caught by the step's ABORTED boundary. Steps 2 to 8 run inside "Webapps off in \
the surviving region", whose boundary turns Operate and Tasklist back on in the surviving region \
and reports what remains to clean up (recreated release, PVCs). Steps 3 to 6 run inside \
"Exporting paused": a watchdog asks a person every pausedWindowTimeout to keep waiting or to \
resume exporting (which aborts), a terminate end event ends it after step 6, and every error \
leaving it runs c8dr.resume-exporting first. Cancelling the instance bypasses all of that.
Errors: INVALID_INPUT from Validate input ends through Report (outcome invalid-input). \
MANUAL_STEP_REQUIRED from c8dr.helm / c8dr.verify-profiles leads to the manual-step user task \
(form c8dr-manual-step, shows manualCommand) and continues only on manualStepDone = true. The \
verification loops after a Helm action wait for the rollout and the profiles of every pod; when \
such a check (or Await recreated brokers) lists stuck brokers (stuckBrokers) a person is asked once per loop to restart them \
(form c8dr-stuck-brokers): only restartApproved = true runs c8dr.restart-stuck-brokers (one pod \
at a time), a no or no answer restarts nothing (stuckRestartReason) and the loop waits on until \
its timer escalates. Every other BPMN error a step can \
throw (preflight: RECREATED_REGION_NOT_CLEAN, PRECONDITION_FAILED; snapshot/restore: \
REPOSITORY_MISSING, SNAPSHOT_FAILED, SNAPSHOT_MISSING, RESTORE_TARGET_NOT_EMPTY, RESTORE_FAILED; \
enable exporter / add brokers: PRECONDITION_FAILED, CONCURRENT_CHANGE; await change: \
CHANGE_FAILED; any step: INVALID_INPUT) is caught by the step's catch-all boundary and goes to the \
operator decision (form c8dr-step-failed): retry re-runs the step, abort ends through Report. \
Deliberately left to incidents: technical job failures after their retries, failures of \
c8dr.report / c8dr.notify, and a failing c8dr.resume-exporting on an abort path (exporting must \
be resumed: fix the cause and retry the job in Operate rather than end with exporting paused)."""


CLEANUP = ("Remaining to clean up before a new failback: the recreated region's Helm release "
           "and its PVCs (helm uninstall, then delete the PVCs)")


def failback():
    m = Model("dr-failback", "DR failback: restore the recreated region")
    P = m.process_id
    MANUAL = "Error_MANUAL_STEP_REQUIRED"

    def preflight(p):
        return [single(service(m, p, "Preflight", "Check the recreated region is clean",
                               "c8dr.preflight-recreated", retries=5))]

    def deploy(p):
        helm = service(m, p, "HelmDeployRecreated", "Deploy recreated region (webapps off)",
                       "c8dr.helm", {"action": "deploy-recreated", "region": "recreated"})
        return [
            with_manual(m, p, helm, MANUAL),
            loop(m, p, "BrokersVisible", "Await recreated brokers",
                 check_task(m, "BrokersVisibleCheck", "Recreated brokers visible?",
                            "c8dr.await-brokers-visible"),
                 "= brokersVisibleTimeout", stuck=True),
        ]

    def webapps_off(p):
        helm = service(m, p, "HelmDisableWebapps", "Disable Operate and Tasklist",
                       "c8dr.helm", {"action": "disable-webapps", "region": "surviving"})
        return [
            with_manual(m, p, helm, MANUAL),
            loop(m, p, "WebappsOff", "Verify webapps off",
                 check_task(m, "WebappsOffCheck", "Verify profiles (webapps off)",
                            "c8dr.verify-profiles", {"region": "surviving",
                                                     "expect": "webapps-off"}),
                 "= changeTimeout", manual_error=MANUAL, stuck=True),
        ]

    def pause(p):
        return [single(service(m, p, "PauseExporting", "Pause exporting",
                               "c8dr.pause-exporting"))]

    def backup(p):
        return [
            single(service(m, p, "RegisterRepoSurviving", "Register repository (surviving)",
                           "c8dr.register-snapshot-repo", {"region": "surviving"})),
            single(service(m, p, "CreateSnapshot", "Create snapshot", "c8dr.create-snapshot")),
            loop(m, p, "Snapshot", "Await snapshot",
                 check_task(m, "SnapshotCheck", "Snapshot finished?", "c8dr.await-snapshot"),
                 "= snapshotTimeout"),
            single(service(m, p, "RegisterRepoRecreated", "Register repository (recreated)",
                           "c8dr.register-snapshot-repo", {"region": "recreated"})),
            single(service(m, p, "RestoreSnapshot", "Restore snapshot",
                           "c8dr.restore-snapshot")),
            loop(m, p, "Restore", "Await restore",
                 check_task(m, "RestoreCheck", "Restore finished?", "c8dr.await-restore"),
                 "= restoreTimeout"),
        ]

    def init_exporter(p):
        enable = service(m, p, "EnableExporter", "Enable exporter (initializeFrom)",
                         "c8dr.enable-exporter")
        return [
            optional_await(m, p, "EnableExporter", single(enable), "Await exporter change"),
            loop(m, p, "ExportersFull", "Verify exporters",
                 check_task(m, "ExportersFullCheck", "Verify exporters (full)",
                            "c8dr.verify-exporters", {"expect": "full"}),
                 "= changeTimeout"),
        ]

    def resume(p):
        return [single(service(m, p, "ResumeExporting", "Resume exporting",
                               "c8dr.resume-exporting"))]

    def add(p):
        return [
            single(service(m, p, "AddBrokers", "Add recreated brokers", "c8dr.add-brokers")),
            loop(m, p, "AwaitAdd", "Await broker addition",
                 check_task(m, "AwaitAddCheck", "Await cluster change", "c8dr.await-change"),
                 "= changeTimeout"),
            loop(m, p, "VerifyFull", "Verify full topology",
                 check_task(m, "VerifyFullCheck", "Verify topology (full)",
                            "c8dr.verify-topology", {"expect": "full"}),
                 "= changeTimeout"),
        ]

    def webapps_on(p):
        # surviving region first (it serves traffic), then the recreated one
        on_surviving = service(m, p, "HelmEnableWebappsSurviving",
                               "Enable Operate and Tasklist (surviving)", "c8dr.helm",
                               {"action": "enable-webapps", "region": "surviving"})
        on_recreated = service(m, p, "HelmEnableWebappsRecreated",
                               "Enable Operate and Tasklist (recreated)", "c8dr.helm",
                               {"action": "enable-webapps", "region": "recreated"})
        return [
            with_manual(m, p, on_surviving, MANUAL),
            with_manual(m, p, on_recreated, MANUAL),
            loop(m, p, "WebappsOn", "Verify webapps on",
                 check_task(m, "WebappsOnCheck", "Verify profiles (webapps on)",
                            "c8dr.verify-profiles", {"region": "both", "expect": "webapps-on"}),
                 "= changeTimeout", manual_error=MANUAL, stuck=True),
        ]

    def rethrow(p, base):
        return [throw_aborted(m, p, "Rethrow_" + base, "Aborted")]

    def paused_steps(p):
        return [
            step(m, p, "Pause", "3. Pause Camunda exporters",
                 lambda sp: inner(m, sp, pause), rethrow(p, "Pause"), False),
            step(m, p, "Backup", "4. Create and restore Elasticsearch backup",
                 lambda sp: inner(m, sp, backup), rethrow(p, "Backup"), True),
            step(m, p, "InitExporter", "5. Initialize the exporter to the recreated region",
                 lambda sp: inner(m, sp, init_exporter), rethrow(p, "InitExporter"), True),
            step(m, p, "Resume", "6. Reactivate Camunda exporters",
                 lambda sp: inner(m, sp, resume), rethrow(p, "Resume"), False),
        ]

    def paused_content(sp):
        """start -> fork: the steps 3 to 6 (ending in a terminate end event, which ends the
        watchdog too) | the watchdog: every pausedWindowTimeout, a person decides to keep waiting
        or to resume exporting (which aborts the failback)."""
        s = start(m, sp, "Start_" + sp)
        fork = m.node("parallelGateway", "Fork_" + sp, None, sp)
        steps = seq(m, paused_steps(sp))
        done = m.node("endEvent", "Done_" + sp, "Exporting resumed", sp,
                      body="<bpmn:terminateEventDefinition />",
                      doc="Ends the sub-process, the watchdog branch included.")
        main = seq(m, [single(s), single(fork), steps, single(done)])
        wmerge = gateway(m, sp, "WatchMerge_" + sp)
        timer = m.node("intermediateCatchEvent", "PausedTooLong_" + sp,
                       "pausedWindowTimeout elapsed", sp, body=timer_def("= pausedWindowTimeout"))
        notify = service(m, sp, "NotifyPaused_" + sp, "Notify operators", "c8dr.notify",
                         {"event": "paused-window-exceeded"})
        reason = ('= if pausedDecision = "resume" then '
                  + with_comment("exporting was paused longer than pausedWindowTimeout; "
                                 "the operator resumed exporting, which aborts the failback")
                  + ' else null')
        ut = user_task(m, sp, "PausedWindow_" + sp, "Exporting paused too long: resume or wait?",
                       "c8dr-paused-window", guard=True,
                       outputs=[("= pausedDecision", "pausedDecision"), ("= comment", "comment"),
                                (reason, "abortReason")],
                       doc="Exporting has been paused for pausedWindowTimeout (log compaction is "
                           "stopped meanwhile). Keep waiting (the default) or resume exporting, "
                           "which aborts the failback (the snapshot would not be consistent).")
        decide = gateway(m, sp, "ResumeNow_" + sp, "Resume now?")
        abort = throw_aborted(m, sp, "ResumeRequested_" + sp, "Resume: abort")
        # the watchdog row goes above the steps (their retry flows run below them)
        top = 130
        main.shift(0, top)
        x = fork.x + 70
        for n in [wmerge, timer, notify, ut, decide, abort]:
            n.x = x
            n.y = 50 - n.h / 2
            x = n.right + GAP
        m.flow(fork, wmerge)
        m.flow(wmerge, timer)
        m.flow(timer, notify)
        m.flow(notify, ut)
        m.flow(ut, decide)
        m.flow(decide, abort, name="resume", cond=explicit_yes('pausedDecision = "resume"'))
        m.flow(decide, wmerge, name="keep waiting", default=True, route="over20")
        shapes = main.shapes + [wmerge, timer, notify, ut, decide, abort]
        return Frag(shapes, max(main.w, abort.right), main.h + top, main.main_y + top, s, done)

    def paused(p):
        """Steps 3 to 6. Every way out but the normal one is an error (ABORTED or anything
        uncaught): the boundary resumes exporting, then throws ABORTED on."""
        sp = m.node("subProcess", "ExportingPaused", "Exporting paused (steps 3 to 6)", p,
                    doc="Bounded by pausedWindowTimeout (watchdog); every path out of this "
                        "sub-process has resumed exporting. Cancelling the instance bypasses "
                        "that (no BPMN element runs on cancellation): fix incidents and retry, "
                        "or abort through a decision task; after a cancel, resume exporting by "
                        "hand (POST /actuator/exporting/resume on the surviving region) and turn "
                        "Operate and Tasklist back on.")
        frag = container(sp, paused_content(sp.id))
        b = m.node("boundaryEvent", "Left_ExportingPaused", "Aborted or failed", p,
                   body=error_def(), attached_to=sp,
                   doc="Catches every error leaving the paused scope (ABORTED included).")
        res = service(m, p, "ResumeAfterAbort", "Resume exporting", "c8dr.resume-exporting",
                      retries=10)
        out = throw_aborted(m, p, "Rethrow_ExportingPaused", "Aborted, exporting resumed")
        attach(b, sp, 40)
        res.x, res.y = b.cx - res.w / 2, sp.bottom + 40
        out.x, out.y = res.right + GAP, res.cy - 18
        m.flow(b, res, route="down")
        m.flow(res, out)
        return Frag(frag.shapes + [b, res, out], max(frag.w, out.right), res.bottom + 20,
                    frag.main_y, sp, sp)

    def webapps_off_scope():
        """Steps 2 to 8 run with Operate and Tasklist off in the surviving region: an abort
        anywhere in here turns them back on before the report."""
        sp = m.node("subProcess", "SurvivingWebappsOff", "Webapps off in the surviving region "
                    "(steps 2 to 8)", P,
                    doc="Every abort inside (ABORTED, or any uncaught error) turns Operate and "
                        "Tasklist back on in the surviving region and reports what remains.")

        def content(p):
            return [
                step(m, p, "WebappsOff", "2. Deactivate Operate and Tasklist in the surviving "
                     "region", lambda s2: inner(m, s2, webapps_off), rethrow(p, "WebappsOff"),
                     True),
                paused(p),
                step(m, p, "AddBrokers", "7. Add the new brokers to the Zeebe cluster",
                     lambda s2: inner(m, s2, add), rethrow(p, "AddBrokers"), True),
                step(m, p, "WebappsOn", "8. Start Operate and Tasklist (surviving, then "
                     "recreated)", lambda s2: inner(m, s2, webapps_on), rethrow(p, "WebappsOn"),
                     True),
            ]
        frag = container(sp, inner(m, sp.id, content))
        b = m.node("boundaryEvent", "Aborted_SurvivingWebappsOff", "Aborted", P,
                   body=error_def(), attached_to=sp,
                   doc="Catches ABORTED (and any uncaught error) from steps 2 to 8.")
        restore = service(m, P, "RestoreWebappsSurviving", "Enable Operate and Tasklist "
                          "(surviving)", "c8dr.helm",
                          {"action": "enable-webapps", "region": "surviving"},
                          outputs=[("= true", "webappsRestored")])
        manual = with_manual(m, P, restore, MANUAL, gated=False, outputs=[
            ("= manualStepDone", "manualStepDone"), ("= comment", "comment"),
            (explicit_yes("manualStepDone = true"), "webappsRestored")])
        webapps = ('(if webappsRestored = true then "Operate and Tasklist are on again in the '
                   'surviving region. " else "Operate and Tasklist are still OFF in the '
                   'surviving region (the manual step was not confirmed): run manualCommand. ")')
        reason = (f"= {ABORT_REASON} + \". \" + {webapps} + \"{CLEANUP}\"")
        rep = report(m, P, "ReportAborted_SurvivingWebappsOff", "Report aborted", "failback",
                     "aborted", reason)
        e = end(m, P, "EndAborted_SurvivingWebappsOff", "Aborted, webapps on")
        attach(b, sp, 40)
        manual.shift(b.cx - 60, sp.bottom + 40)
        rep.x, rep.y = max(x.right for x in manual.shapes) + GAP, manual.entry.cy - rep.h / 2
        e.x, e.y = rep.right + GAP, rep.cy - 18
        m.flow(b, restore, route="down")
        m.flow(manual.exit, rep)
        m.flow(rep, e)
        shapes = frag.shapes + [b] + manual.shapes + [rep, e]
        return Frag(shapes, max(frag.w, e.right), max(x.bottom for x in shapes) + 20,
                    frag.main_y, sp, sp)

    frags = [
        single(start(m, P, "Start", "Region recreated")),
        validate(m, "failback"),
        step_(m, P, "Preflight", "Preflight: recreated region clean",
              lambda sp: inner(m, sp, preflight), "failback", can_abort_inside=False),
        approval(m, P, "ApproveFailback", "Approve failback", "c8dr-approve-failback",
                 ("decision", '"approve"', '"reject"'), "Approved?", "approve",
                 "rejected by the approver", "failback", "rejected",
                 "Shows the preflight findings."),
        step_(m, P, "Deploy", "1. Deploy Camunda 8 in the recreated region",
              lambda sp: inner(m, sp, deploy), "failback",
              tail=process_abort_tail(m, "Deploy", "failback", CLEANUP)),
        webapps_off_scope(),
        approval(m, P, "ConfirmRestored", "Confirm service restored", "c8dr-confirm-restored",
                 ("decision", '"confirm"', '"reject"'), "Confirmed?", "confirm",
                 "the operator did not confirm that the service is restored", "failback",
                 "not-confirmed", "Shows the final topology and exporters."),
    ] + final_report(m, "failback")
    seq(m, frags)
    roots = error_elements(["INVALID_INPUT", "MANUAL_STEP_REQUIRED", "ABORTED"])
    return to_xml(m, roots, FAILBACK_DOC)


# ---------------------------------------------------------------------------------------------
# dr-drill

DRILL_DOC = """DR drill on a target that allows drills (drill_allowed = true): canaries, simulated \
region loss, dr-failover, region recreation, dr-failback, canaries again, report with recovery \
times. Started by the message c8dr-drill (correlation key = target; variables target, lostRegion, \
approverGroup, autoApprove), e.g. by `c8dr drill trigger` from a CronJob.
Errors: INVALID_INPUT from Validate input and DRILL_NOT_ALLOWED from the drill guard end the drill \
cleanly through Report (outcomes invalid-input, refused). Every BPMN error of a later step \
(INVALID_INPUT, DRILL_NOT_ALLOWED if the target's config changed mid-drill) goes to the operator \
decision (form c8dr-step-failed). A failover or failback that did not complete (its report's \
outcome is not "completed") ends the drill through Report (outcome failover-incomplete / \
failback-incomplete). The call activities propagate only the child's report (as failoverReport / \
failbackReport) so the child's variables (startedAt, decisions) do not overwrite the drill's. \
Deliberately left to incidents: technical job failures after their retries and failures of \
c8dr.report / c8dr.notify."""


def drill():
    m = Model("dr-drill", "DR drill: lose a region, fail over, fail back")
    P = m.process_id
    msg = ('<bpmn:message id="Message_c8dr_drill" name="c8dr-drill">'
           '<bpmn:extensionElements><zeebe:subscription correlationKey="= target" />'
           '</bpmn:extensionElements></bpmn:message>')

    def canaries_check(p, base, region):
        return loop(m, p, base, f"Check canaries ({region})",
                    check_task(m, base + "Check", f"Check canaries ({region})",
                               "c8dr.drill-canaries", {"action": "check", "region": region}),
                    "= canaryTimeout")

    def create(p):
        return [
            single(service(m, p, "CreateCanaries", "Create canary instances",
                           "c8dr.drill-canaries", {"action": "create"})),
            canaries_check(p, "CanariesBefore", "both"),
        ]

    def lose(p):
        return [single(service(m, p, "LoseRegion", "Lose the region", "c8dr.drill-region",
                               {"action": "lose"}))]

    def after_failover(p):
        return [canaries_check(p, "CanariesSurviving", "surviving")]

    def recreate(p):
        return [single(service(m, p, "RecreateRegion", "Recreate the region",
                               "c8dr.drill-region", {"action": "recreate"}))]

    def after_failback(p):
        return [canaries_check(p, "CanariesAfter", "both")]

    def call(base, name, process_id, out_var, inputs):
        ext = [f'<zeebe:calledElement processId="{process_id}" '
               'propagateAllChildVariables="false" />', "<zeebe:ioMapping>"]
        for src, tgt in inputs:
            ext.append(f'<zeebe:input source="{src}" target="{tgt}" />')
        ext.append(f'<zeebe:output source="= report" target="{out_var}" />')
        ext.append("</zeebe:ioMapping>")
        c = m.node("callActivity", base, name, P, ext="\n".join(ext))
        ok = gateway(m, P, "Completed_" + base, "Completed?")
        outcome = "failover-incomplete" if process_id == "dr-failover" else "failback-incomplete"
        rep = report(m, P, "Report_" + base, "Report " + outcome.replace("-", " "), "drill",
                     outcome, f"= {out_var}.outcome")
        e = end(m, P, "End_" + base, outcome.replace("-", " ").capitalize())
        f = seq(m, [single(c), single(ok)])
        rep.x, rep.y = ok.cx - rep.w / 2, c.bottom + 40
        e.x, e.y = rep.right + 45, rep.cy - 18
        m.flow(ok, rep, name="no", route="down", default=True)
        m.flow(rep, e)
        return Frag(f.shapes + [rep, e], max(f.w, e.right), rep.bottom + 20, f.main_y, c, ok,
                    exit_cond=f'= {out_var}.outcome = "completed"', exit_name="yes")

    guard = service(m, P, "DrillGuard", "Drill allowed on target?", "c8dr.drill-guard")
    frags = [
        single(start(m, P, "Start", "Drill requested",
                     body='<bpmn:messageEventDefinition messageRef="Message_c8dr_drill" />')),
        validate(m, "drill"),
        guarded_task(m, P, guard, "Error_DRILL_NOT_ALLOWED", "refused", "drill", "Refused"),
        step_(m, P, "Canaries", "Create canaries", lambda sp: inner(m, sp, create), "drill"),
        step_(m, P, "Lose", "Lose the region", lambda sp: inner(m, sp, lose), "drill",
              can_abort_inside=False),
        call("Failover", "Fail over (dr-failover)", "dr-failover", "failoverReport",
             [("= &quot;drill&quot;", "reason")]),
        step_(m, P, "CanariesSurviving", "Canaries in the surviving region",
              lambda sp: inner(m, sp, after_failover), "drill"),
        step_(m, P, "Recreate", "Recreate the region", lambda sp: inner(m, sp, recreate), "drill",
              can_abort_inside=False),
        call("Failback", "Fail back (dr-failback)", "dr-failback", "failbackReport",
             [("= lostRegion", "recreatedRegion")]),
        step_(m, P, "CanariesAfter", "Canaries in both regions",
              lambda sp: inner(m, sp, after_failback), "drill"),
    ] + final_report(m, "drill")
    seq(m, frags)
    roots = [msg] + error_elements(["INVALID_INPUT", "DRILL_NOT_ALLOWED", "ABORTED"])
    return to_xml(m, roots, DRILL_DOC)


def main():
    for name, fn in [("dr-failover", failover), ("dr-failback", failback), ("dr-drill", drill)]:
        path = os.path.join(ROOT, name + ".bpmn")
        with open(path, "w") as f:
            f.write(fn())
        print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
