"""The c8dr process patterns (DESIGN.md section 5, docs/jobs.md): service tasks, verification
loops, guarded steps, approvals. Each returns a laid-out Frag (see layout.py)."""

from xml.sax.saxutils import quoteattr

from layout import GAP, Frag, attach, container, pad, seq, single


def q(v):
    return quoteattr(v)


def io(inputs=(), outputs=()):
    if not inputs and not outputs:
        return ""
    lines = ["<zeebe:ioMapping>"]
    for src, tgt in inputs:
        lines.append(f"<zeebe:input source={q(src)} target={q(tgt)} />")
    for src, tgt in outputs:
        lines.append(f"<zeebe:output source={q(src)} target={q(tgt)} />")
    lines.append("</zeebe:ioMapping>")
    return "\n".join(lines)


def service(m, parent, base, name, job, headers=None, retries=3, inputs=(), outputs=(), doc=None):
    ext = [f'<zeebe:taskDefinition type="{job}" retries="{retries}" />']
    if headers:
        ext.append("<zeebe:taskHeaders>")
        for k, v in headers.items():
            ext.append(f"<zeebe:header key={q(k)} value={q(v)} />")
        ext.append("</zeebe:taskHeaders>")
    ext.append(io(inputs, outputs))
    return m.node("serviceTask", base, name, parent, ext="\n".join(ext), doc=doc)


# Four-eyes (Camunda 8.8 user task listener): denies a completion by the process initiator or
# a rejection without a reason (docs/jobs.md "Four-eyes approvals").
APPROVAL_GUARD = [
    "<zeebe:taskListeners>",
    '<zeebe:taskListener eventType="completing" type="c8dr.approval-guard" retries="3" />',
    "</zeebe:taskListeners>",
]


def user_task(m, parent, base, name, form, due="approvalDue", outputs=(), doc=None, guard=False,
              inputs=()):
    ext = [
        "<zeebe:userTask />",
        f'<zeebe:formDefinition formId="{form}" bindingType="deployment" />',
        '<zeebe:assignmentDefinition candidateGroups="= [approverGroup]" />',
        f'<zeebe:taskSchedule dueDate="= now() + duration({due})" />',
        io(inputs, outputs),
    ]
    if guard:
        ext.extend(APPROVAL_GUARD)
    return m.node("userTask", base, name, parent, ext="\n".join(ext), doc=doc)


def gateway(m, parent, base, name=None):
    return m.node("exclusiveGateway", base, name, parent)


def start(m, parent, base="Start", name=None, body=""):
    return m.node("startEvent", base, name, parent, body=body)


def end(m, parent, base="End", name=None):
    return m.node("endEvent", base, name, parent)


def timer_def(expr):
    return (
        '<bpmn:timerEventDefinition><bpmn:timeDuration xsi:type="bpmn:tFormalExpression">'
        f"{expr}</bpmn:timeDuration></bpmn:timerEventDefinition>"
    )


def error_def(error_id=None):
    if error_id:
        return f'<bpmn:errorEventDefinition errorRef="{error_id}" />'
    return "<bpmn:errorEventDefinition />"


def explicit_yes(test):
    """A gate condition that is true only for an explicit yes: a missing, null or wrongly typed
    answer makes `test` null or false, and `if` turns that into false (the default flow, which
    ends without mutations) instead of a condition incident."""
    return f"= if {test} then true else false"


def shown(var):
    """FEEL: the value of `var` for a message, `missing` when null."""
    return f'(if {var} = null then "missing" else string({var}))'


def with_comment(prefix):
    """FEEL: a string literal prefix + ": comment" when a comment was given."""
    return f'"{prefix}" + (if comment = null then "" else ": " + string(comment))'


def no_answer(question, var, consequence):
    return (f'"no valid answer to \'{question}\' ({var} = " + {shown(var)} + "): {consequence}"')


def report(m, parent, base, name, process, outcome, reason):
    return service(
        m, parent, base, name, "c8dr.report", {"process": process},
        inputs=[(f'= "{outcome}"', "outcome"), (reason, "outcomeReason")],
    )


# ---------------------------------------------------------------------------------------------


def lower_row(m, items, x0, y):
    """Places nodes left to right starting at x0 on a row whose centre line is y."""
    x = x0
    for n in items:
        n.x = x
        n.y = y - n.h / 2
        x = n.right + GAP
    return x - GAP


def guarded(m, parent, host_frag, host, boundary_body, boundary_name, notify_event, ut, decision_var,
            abort_tail, catch_aborted, boundary_doc=None):
    """The host (a step sub-process or a verification loop), an interrupting boundary event on it
    -> c8dr.notify -> an operator decision (retry | anything else aborts); retry re-enters the host
    through a merge gateway, abort runs `abort_tail` (a list of nodes in `parent`, last one an end
    event). With `catch_aborted`, an ABORTED error boundary on the host (an abort decided inside
    it, thrown by an error end event) joins the same abort tail."""
    merge = gateway(m, parent, "Merge_" + host.id)
    b = m.node("boundaryEvent", "Boundary_" + host.id, boundary_name, parent, body=boundary_body,
               attached_to=host, doc=boundary_doc)
    notify = service(m, parent, "Notify_" + host.id, "Notify operators", "c8dr.notify",
                     {"event": notify_event})
    decide = gateway(m, parent, "Decide_" + host.id, "Retry?")

    merge.x, merge.y = 0, host_frag.main_y - 25
    host_frag.shift(merge.right + GAP, 0)
    attach(b, host, 40)
    row_y = host.bottom + 80
    lower_row(m, [notify], b.x + 18 - notify.w / 2, row_y)
    end_x = lower_row(m, [ut, decide], notify.right + GAP, row_y)
    shapes = [merge] + host_frag.shapes + [b, notify, ut, decide]
    first_abort = abort_tail[0]
    if catch_aborted:
        ab = m.node("boundaryEvent", "Aborted_" + host.id, "Aborted", parent,
                    body=error_def("Error_ABORTED"), attached_to=host,
                    doc="An abort decided inside this step (error end event ABORTED).")
        abort_merge = gateway(m, parent, "AbortMerge_" + host.id)
        # the ABORTED boundary sits right of the decision row and drops straight into the merge
        offset = max(host.w - 70, end_x + GAP + 25 - 18 - host.x)
        if offset + 36 + 30 > host.w:
            host.w = offset + 36 + 30
        attach(ab, host, offset)
        abort_merge.x, abort_merge.y = ab.cx - 25, row_y - 25
        end_x = abort_merge.right
        shapes += [ab, abort_merge]
        m.flow(ab, abort_merge, route="down")
        m.flow(abort_merge, abort_tail[0])
        first_abort = abort_merge
    end_x = lower_row(m, abort_tail, end_x + GAP, row_y)
    shapes += abort_tail

    m.flow(merge, host)
    m.flow(b, notify, route="down")
    m.flow(notify, ut)
    m.flow(ut, decide)
    m.flow(decide, merge, name="retry", cond=explicit_yes(f'{decision_var} = "retry"'),
           route="below30")
    m.flow(decide, first_abort, name="abort", default=True)
    for x, y in zip(abort_tail, abort_tail[1:]):
        m.flow(x, y)
    w = max(s.right for s in shapes)
    h = max(s.bottom for s in shapes) + 50
    return Frag(shapes, w, h, host_frag.main_y, merge, host)


def decision_outputs(var, question):
    """A retry/abort decision: the answer, the comment and `abortReason` (null on retry; anything
    but an explicit retry aborts, and says why)."""
    reason = (f'= if {var} = "retry" then null else if {var} = "abort" then '
              f'{with_comment("aborted by the operator")} else '
              f'{no_answer(question, var, "treated as abort")}')
    return [(f"= {var}", var), ("= comment", "comment"), (reason, "abortReason")]


def throw_aborted(m, parent, base, name="Aborted"):
    """An error end event throwing ABORTED to the enclosing step's (or scope's) boundary."""
    return m.node("endEvent", base, name, parent, body=error_def("Error_ABORTED"))


def step_failed_ut(m, parent, host):
    return user_task(
        m, parent, "StepFailed_" + host.id, "Step failed: retry or abort?", "c8dr-step-failed",
        outputs=decision_outputs("errorDecision", "Step failed: retry or abort?"),
        doc="A step threw a BPMN error (lastError). The operator fixes the cause and retries the "
            "whole step (every step is idempotent), or aborts.",
    )


def step(m, parent, base, title, build_inner, abort_tail, can_abort_inside, doc=None):
    """A labelled embedded sub-process for one step of the procedure, with a catch-all error
    boundary -> c8dr.notify (step-failed) -> operator decision (c8dr-step-failed), and (when
    `can_abort_inside`) an ABORTED boundary for aborts decided inside the step."""
    sp = m.node("subProcess", "Step_" + base, title, parent, doc=doc)
    inner = build_inner(sp.id)
    frag = container(sp, inner)
    ut = step_failed_ut(m, parent, sp)
    return guarded(
        m, parent, frag, sp, error_def(), "Step failed", "step-failed", ut, "errorDecision",
        abort_tail, can_abort_inside,
        boundary_doc="Catches every BPMN error thrown inside this step and not handled there.",
    )


STUCK_REASON = ('= if restartApproved = true then null else if restartApproved = false then ' +
                with_comment("the operator declined restarting the stuck brokers; waiting on") +
                ' else ' +
                no_answer("Restart stuck brokers?", "restartApproved",
                          "nothing was restarted; waiting on"))


def loop(m, parent, base, title, check, timeout_expr, manual_error=None, stuck=False):
    """The verification loop (DESIGN.md section 5): check -> verified? -> done, else wait
    `verifyInterval` and check again; interrupting timer boundary -> verification-timeout decision.
    The abort path throws ABORTED (error end event) to the enclosing step.

    With `stuck` (checks that list `stuckBrokers`): when the check finds stuck brokers, a person
    is asked once per loop whether to restart them (form c8dr-stuck-brokers); only an explicit
    restartApproved = true runs c8dr.restart-stuck-brokers, then the check runs again; a no or a
    missing answer records stuckRestartReason and the loop waits on (its timer still escalates)."""
    loop_io = ""
    if stuck:
        # local to this loop: a "no" is not asked again in this loop, and is forgotten after it
        loop_io = io([("= false", "stuckRestartDeclined"), ("= null", "restartApproved")])
    sp = m.node("subProcess", "Loop_" + base, title, parent, ext=loop_io,
                doc=f"Verification loop; gives up after {timeout_expr.lstrip('= ')}.")
    s = start(m, sp.id, "Start_" + base)
    merge = gateway(m, sp.id, "Check_" + base)
    check_task = check(sp.id)
    verified = gateway(m, sp.id, "Verified_" + base, "Verified?")
    done = end(m, sp.id, "Verified_End_" + base, "Verified")
    wait = m.node("intermediateCatchEvent", "Wait_" + base, "Wait verifyInterval", sp.id,
                  body=timer_def("= verifyInterval"))
    main = seq(m, [single(s), single(merge), single(check_task), single(verified), single(done)])
    # seq linked verified -> done: make it the conditional "yes" flow
    f = verified.outgoing[0]
    f.cond, f.name = "= verified = true", "yes"
    wait.x = check_task.x + 52
    wait.y = check_task.bottom + 30
    shapes = main.shapes + [wait]
    m.flow(verified, wait, name="not yet", route="down_left", default=True)
    m.flow(wait, merge, route="left_up")
    if manual_error:
        mb = m.node("boundaryEvent", "Manual_" + base, "Manual step required", sp.id,
                    body=error_def(manual_error), attached_to=check_task)
        attach(mb, check_task, 4)
        mut = manual_ut(m, sp.id, base)
        mdone = gateway(m, sp.id, "ManualDone_" + base, "Done?")
        mend = end(m, sp.id, "Manual_End_" + base, "Checked manually")
        mabort = throw_aborted(m, sp.id, "Manual_NotDone_" + base, "Not done: abort")
        mut.x, mut.y = mb.x + 18 - mut.w / 2, wait.bottom + 30
        mdone.x, mdone.y = mut.right + GAP, mut.cy - 25
        mend.x, mend.y = mdone.right + GAP, mut.cy - 18
        mabort.x, mabort.y = mdone.cx - 18, mut.bottom + 20
        m.flow(mb, mut, route="down")
        m.flow(mut, mdone)
        m.flow(mdone, mend, name="yes", cond=explicit_yes("manualStepDone = true"))
        m.flow(mdone, mabort, name="no", default=True, route="down")
        shapes += [mb, mut, mdone, mend, mabort]
    if stuck:
        # verified? -> stuck brokers (not declined in this loop) -> ask -> restart -> check again
        sut = user_task(
            m, sp.id, "StuckBrokers_" + base, "Restart stuck brokers?", "c8dr-stuck-brokers",
            inputs=[("= null", "restartApproved")],
            outputs=[("= restartApproved", "restartApproved"), ("= comment", "comment"),
                     ("= if restartApproved = true then false else true", "stuckRestartDeclined"),
                     (STUCK_REASON, "stuckRestartReason")],
            doc="Brokers Running but not Ready for kubernetes.stuck_after_secs (stuckBrokers; "
                "camunda/camunda#55038). Only an explicit yes restarts them, one pod at a time; "
                "a no or a missing answer restarts nothing and the loop waits on.")
        sgate = gateway(m, sp.id, "RestartApproved_" + base, "Restart?")
        restart = service(m, sp.id, "RestartStuck_" + base, "Restart stuck brokers",
                          "c8dr.restart-stuck-brokers", retries=3)
        row = max(n.bottom for n in shapes) + 60
        lower_row(m, [sut, sgate, restart], verified.cx + 40, row)
        m.flow(verified, sut, name="stuck brokers", route="down",
               cond=explicit_yes("count(stuckBrokers) > 0 and stuckRestartDeclined = false"))
        m.flow(sut, sgate)
        m.flow(sgate, restart, name="yes", cond=explicit_yes("restartApproved = true"))
        m.flow(sgate, merge, name="no", default=True, route="below25")
        m.flow(restart, merge, route="below45")
        shapes += [sut, sgate, restart]
    inner = Frag(shapes, max(main.w, max(n.right for n in shapes)), max(s.bottom for s in shapes) + (60 if stuck else 0), main.main_y, s, done)
    frag = container(sp, inner)
    ut = user_task(
        m, parent, "Timeout_" + base, "Verification timed out: retry or abort?",
        "c8dr-verification-timeout", outputs=decision_outputs("timeoutDecision", "Verification timed out: retry or abort?"),
        doc="The check did not verify in time; retry re-enters the loop.",
    )
    return guarded(
        m, parent, frag, sp, timer_def(timeout_expr), "Timed out", "verification-timeout", ut,
        "timeoutDecision", [throw_aborted(m, parent, "Aborted_" + base)], False,
    )


MANUAL_REASON = ('= if manualStepDone = true then null else if manualStepDone = false then ' +
                 with_comment("the manual step was not done (the operator answered no)") +
                 ' else ' +
                 no_answer("Command run successfully?", "manualStepDone", "treated as abort"))


def manual_ut(m, parent, base, outputs=None):
    return user_task(
        m, parent, "ManualStep_" + base, "Run the manual step", "c8dr-manual-step",
        outputs=outputs if outputs is not None else [
            ("= manualStepDone", "manualStepDone"), ("= comment", "comment"),
            (MANUAL_REASON, "abortReason")],
        doc="MANUAL_STEP_REQUIRED: the form shows manualCommand; the operator runs it and "
            "confirms (manualStepDone = true) and the process continues; any other answer aborts.",
    )


def with_manual(m, parent, task, error_id, gated=True, outputs=None):
    """A task whose MANUAL_STEP_REQUIRED error leads to the c8dr-manual-step user task. Gated:
    only an explicit manualStepDone = true continues as if the task had completed, anything else
    throws ABORTED to the enclosing step. Not gated (abort paths, which cannot abort again): the
    process continues and `outputs` record the answer."""
    b = m.node("boundaryEvent", "Manual_" + task.id, "Manual step required", parent,
               body=error_def(error_id), attached_to=task)
    ut = manual_ut(m, parent, task.id, outputs)
    join = gateway(m, parent, "Done_" + task.id)
    task.x, task.y = 0, 0
    attach(b, task, 32)
    ut.x, ut.y = b.x + 18 - ut.w / 2, task.bottom + 50
    shapes = [task, b, ut, join]
    m.flow(task, join)
    m.flow(b, ut, route="down")
    bottom = ut.bottom
    if gated:
        done = gateway(m, parent, "ManualDone_" + task.id, "Done?")
        abort = throw_aborted(m, parent, "NotDone_" + task.id, "Not done: abort")
        done.x, done.y = ut.right + GAP, ut.cy - 25
        abort.x, abort.y = done.cx - 18, done.bottom + 25
        join.x, join.y = max(task.right, done.right) + GAP, task.cy - 25
        m.flow(ut, done)
        m.flow(done, join, name="yes", cond=explicit_yes("manualStepDone = true"), route="up")
        m.flow(done, abort, name="no", default=True, route="down")
        shapes += [done, abort]
        right = join.right
        bottom = abort.bottom
    else:
        join.x, join.y = max(task.right, ut.right) + GAP, task.cy - 25
        m.flow(ut, join, route="up")
        right = join.right
    return Frag(shapes, right, bottom + 20, task.cy, task, join)


def optional_await(m, parent, base, action_frag, title):
    """action (completes with changeId or null) -> if a change was issued, await it."""
    issued = gateway(m, parent, "Issued_" + base, "Change issued?")
    await_frag = loop(m, parent, base, title, lambda p: service(
        m, p, "AwaitChange_" + base, "Await cluster change", "c8dr.await-change", retries=5),
        "= changeTimeout")
    joined = gateway(m, parent, "Awaited_" + base)
    issued_frag = single(issued)
    issued_frag.exit_cond, issued_frag.exit_name = "= changeId != null", "yes"
    frag = seq(m, [action_frag, issued_frag, await_frag, single(joined)])
    m.flow(issued, joined, name="no change", route="over20", default=True)
    return pad(frag, top=40)


def approval(m, parent, base, name, form, gate, gate_name, yes_label, no_text, process,
             reject_outcome, doc):
    """Skipped when autoApprove = true; Camunda user task with a linked form, candidate group,
    due date and a non-interrupting reminder. `gate` = (variable, FEEL yes value, FEEL no value):
    anything but the yes value ends the process through c8dr.report (outcome `reject_outcome`,
    reason: the explicit no with its comment, or which answer was missing or invalid)."""
    auto = gateway(m, parent, "Auto_" + base, "Auto-approve?")
    ut = user_task(m, parent, base, name, form, doc=doc, guard=True)
    rem = m.node("boundaryEvent", "Reminder_" + base, "Reminder", parent,
                 body=timer_def("= reminderAfter"), attached_to=ut,
                 attrs={"cancelActivity": "false"})
    notify = service(m, parent, "Remind_" + base, "Remind approvers", "c8dr.notify",
                     {"event": "approval-reminder"})
    rem_end = end(m, parent, "Reminded_" + base, "Reminder sent")
    join = gateway(m, parent, "Approved_" + base)
    auto.x, auto.y = 0, 40
    ut.x, ut.y = auto.right + GAP, auto.cy - 40
    shapes = [auto, ut, rem, notify, rem_end, join]
    attach(rem, ut, 32)
    notify.x, notify.y = rem.x + 18 - notify.w / 2, ut.bottom + 50
    rem_end.x, rem_end.y = notify.cx - 18, notify.bottom + 30
    m.flow(auto, ut, name="no", default=True)
    m.flow(rem, notify, route="down")
    m.flow(notify, rem_end, route="down")
    # the gate: only an explicit yes continues; no, missing, null or a wrong type ends the
    # process through c8dr.report with the reason, before any further mutation
    var, yes, no_value = gate
    dec = gateway(m, parent, "Decision_" + base, gate_name)
    reason = (f"= if {var} = {no_value} then {with_comment(no_text)} else "
              f'{no_answer(name, var, "nothing further was changed")}')
    rep = report(m, parent, "Report_" + base, "Report " + reject_outcome, process,
                 reject_outcome, reason)
    rej_end = end(m, parent, "End_" + base, reject_outcome.replace("-", " ").capitalize())
    dec.x, dec.y = ut.right + 80, auto.y
    join.x, join.y = dec.right + GAP + 20, auto.y
    rep.x, rep.y = dec.cx - rep.w / 2, ut.bottom + 50
    rej_end.x, rej_end.y = rep.right + GAP, rep.cy - 18
    m.flow(ut, dec)
    m.flow(dec, join, name=yes_label, cond=explicit_yes(f"{var} = {yes}"))
    m.flow(dec, rep, name="otherwise", route="down", default=True)
    m.flow(rep, rej_end)
    shapes += [dec, rep, rej_end]
    m.flow(auto, join, name="yes", cond="= autoApprove = true", route="over20")
    w = max(s.right for s in shapes)
    h = max(s.bottom for s in shapes) + 20
    return Frag(shapes, w, h, auto.cy, auto, join)


def guarded_task(m, parent, task, error_id, outcome, process, base):
    """A task whose error `error_id` ends the process cleanly through c8dr.report."""
    b = m.node("boundaryEvent", "Error_" + task.id, outcome.replace("-", " ").capitalize(), parent,
               body=error_def(error_id), attached_to=task)
    rep = report(m, parent, "Report_" + base, "Report " + outcome.replace("-", " "), process,
                 outcome, "= lastError.message")
    e = end(m, parent, "End_" + base, outcome.replace("-", " ").capitalize())
    task.x, task.y = 0, 0
    attach(b, task, 32)
    rep.x, rep.y = b.x + 18 - rep.w / 2, task.bottom + 50
    e.x, e.y = rep.right + GAP, rep.cy - 18
    m.flow(b, rep, route="down")
    m.flow(rep, e)
    shapes = [task, b, rep, e]
    return Frag(shapes, e.right, rep.bottom + 20, task.cy, task, task)
