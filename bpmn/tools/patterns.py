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


def user_task(m, parent, base, name, form, due="approvalDue", outputs=(), doc=None):
    ext = [
        "<zeebe:userTask />",
        f'<zeebe:formDefinition formId="{form}" bindingType="deployment" />',
        '<zeebe:assignmentDefinition candidateGroups="= [approverGroup]" />',
        f'<zeebe:taskSchedule dueDate="= now() + duration({due})" />',
        io((), outputs),
    ]
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
            abort_tail, aborted_gateway, boundary_doc=None, non_interrupting=False):
    """The host (a step sub-process or a verification loop), an interrupting boundary event on it
    -> c8dr.notify -> an operator decision (retry | abort); retry re-enters the host through a
    merge gateway, abort runs `abort_tail` (a list of nodes in `parent`, last one an end event).
    With `aborted_gateway`, an exclusive gateway after the host routes `abortRequested = true`
    (an abort decided inside the host) to the same abort tail."""
    merge = gateway(m, parent, "Merge_" + host.id)
    b = m.node("boundaryEvent", "Boundary_" + host.id, boundary_name, parent, body=boundary_body,
               attached_to=host, doc=boundary_doc)
    notify = service(m, parent, "Notify_" + host.id, "Notify operators", "c8dr.notify",
                     {"event": notify_event})
    decide = gateway(m, parent, "Decide_" + host.id, "Retry or abort?")
    aborted = gateway(m, parent, "Aborted_" + host.id, "Aborted?") if aborted_gateway else None
    abort_merge = gateway(m, parent, "AbortMerge_" + host.id) if aborted_gateway else None

    merge.x, merge.y = 0, host_frag.main_y - 25
    host_frag.shift(merge.right + GAP, 0)
    attach(b, host, 40)
    row_y = host.bottom + 80
    lower_row(m, [notify], b.x + 18 - notify.w / 2, row_y)
    end_x = lower_row(m, [ut, decide], notify.right + GAP, row_y)
    shapes = [merge] + host_frag.shapes + [b, notify, ut, decide]
    exit_ = host
    if aborted_gateway:
        ax = max(end_x + GAP, host.right + GAP)
        aborted.x, aborted.y = ax, host_frag.main_y - 25
        abort_merge.x, abort_merge.y = ax, row_y - 25
        end_x = abort_merge.right
        shapes += [aborted, abort_merge]
        exit_ = aborted
    end_x = lower_row(m, abort_tail, end_x + GAP, row_y)
    shapes += abort_tail

    m.flow(merge, host)
    m.flow(b, notify, route="down")
    m.flow(notify, ut)
    m.flow(ut, decide)
    m.flow(decide, merge, name="retry", cond=f'= {decision_var} = "retry"', route="below30")
    first_abort = abort_merge if aborted_gateway else abort_tail[0]
    m.flow(decide, first_abort, name="abort", default=True)
    if aborted_gateway:
        m.flow(host, aborted)
        m.flow(aborted, abort_merge, name="aborted", cond="= abortRequested = true", route="down")
        m.flow(abort_merge, abort_tail[0])
    for x, y in zip(abort_tail, abort_tail[1:]):
        m.flow(x, y)
    w = max(s.right for s in shapes)
    h = max(s.bottom for s in shapes) + 50
    return Frag(shapes, w, h, host_frag.main_y, merge, exit_,
                exit_default=aborted_gateway, exit_name="continue" if aborted_gateway else None)


def decision_outputs(var):
    return [
        (f"= {var}", var),
        ("= comment", "comment"),
        (f'= if {var} = "retry" then false else true', "abortRequested"),
    ]


def step_failed_ut(m, parent, host):
    return user_task(
        m, parent, "StepFailed_" + host.id, "Step failed: retry or abort?", "c8dr-step-failed",
        outputs=decision_outputs("errorDecision"),
        doc="A step threw a BPMN error (lastError). The operator fixes the cause and retries the "
            "whole step (every step is idempotent), or aborts.",
    )


def step(m, parent, base, title, build_inner, abort_tail, can_abort_inside, doc=None):
    """A labelled embedded sub-process for one step of the procedure, with a catch-all error
    boundary -> c8dr.notify (step-failed) -> operator decision (c8dr-step-failed)."""
    sp = m.node("subProcess", "Step_" + base, title, parent, doc=doc)
    inner = build_inner(sp.id)
    frag = container(sp, inner)
    ut = step_failed_ut(m, parent, sp)
    return guarded(
        m, parent, frag, sp, error_def(), "Step failed", "step-failed", ut, "errorDecision",
        abort_tail, can_abort_inside,
        boundary_doc="Catches every BPMN error thrown inside this step and not handled there.",
    )


def loop(m, parent, base, title, check, timeout_expr, manual_error=None):
    """The verification loop (DESIGN.md section 5): check -> verified? -> done, else wait
    `verifyInterval` and check again; interrupting timer boundary -> verification-timeout decision.
    The abort path ends the enclosing scope with `abortRequested = true`."""
    sp = m.node("subProcess", "Loop_" + base, title, parent,
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
        mend = end(m, sp.id, "Manual_End_" + base, "Checked manually")
        mut.x, mut.y = mb.x + 18 - mut.w / 2, wait.bottom + 30
        mend.x, mend.y = mut.right + GAP, mut.cy - 18
        m.flow(mb, mut, route="down")
        m.flow(mut, mend)
        shapes += [mb, mut, mend]
    inner = Frag(shapes, main.w, max(s.bottom for s in shapes), main.main_y, s, done)
    frag = container(sp, inner)
    ut = user_task(
        m, parent, "Timeout_" + base, "Verification timed out: retry or abort?",
        "c8dr-verification-timeout", outputs=decision_outputs("timeoutDecision"),
        doc="The check did not verify in time; retry re-enters the loop.",
    )
    return guarded(
        m, parent, frag, sp, timer_def(timeout_expr), "Timed out", "verification-timeout", ut,
        "timeoutDecision", [end(m, parent, "Aborted_" + base, "Aborted")], False,
    )


def manual_ut(m, parent, base):
    return user_task(
        m, parent, "ManualStep_" + base, "Run the manual step", "c8dr-manual-step",
        doc="MANUAL_STEP_REQUIRED: the form shows manualCommand; the operator runs it and "
            "confirms; the process continues.",
    )


def with_manual(m, parent, task, error_id):
    """A task whose MANUAL_STEP_REQUIRED error leads to the c8dr-manual-step user task, after
    which the process continues as if the task had completed."""
    b = m.node("boundaryEvent", "Manual_" + task.id, "Manual step required", parent,
               body=error_def(error_id), attached_to=task)
    ut = manual_ut(m, parent, task.id)
    join = gateway(m, parent, "Done_" + task.id)
    task.x, task.y = 0, 0
    attach(b, task, 32)
    ut.x, ut.y = b.x + 18 - ut.w / 2, task.bottom + 50
    join.x, join.y = max(task.right, ut.right) + GAP, task.cy - 25
    m.flow(task, join)
    m.flow(b, ut, route="down")
    m.flow(ut, join, route="up")
    shapes = [task, b, ut, join]
    return Frag(shapes, join.right, ut.bottom + 20, task.cy, task, join)


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


def approval(m, parent, base, name, form, with_decision, approve_value, process, reject_outcome,
             doc):
    """Skipped when autoApprove = true; Camunda user task with a linked form, candidate group,
    due date and a non-interrupting reminder; a rejection ends the process through c8dr.report."""
    auto = gateway(m, parent, "Auto_" + base, "Auto-approve?")
    ut = user_task(m, parent, base, name, form, doc=doc)
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
    if with_decision:
        dec = gateway(m, parent, "Decision_" + base, "Decision?")
        rep = report(m, parent, "Report_" + base, "Report " + reject_outcome, process,
                     reject_outcome, "= comment")
        rej_end = end(m, parent, "End_" + base, reject_outcome.capitalize())
        dec.x, dec.y = ut.right + 80, auto.y
        join.x, join.y = dec.right + GAP + 20, auto.y
        rep.x, rep.y = dec.cx - rep.w / 2, ut.bottom + 50
        rej_end.x, rej_end.y = rep.right + GAP, rep.cy - 18
        m.flow(ut, dec)
        m.flow(dec, join, name=approve_value, cond=f'= decision = "{approve_value}"')
        m.flow(dec, rep, name=reject_outcome, route="down", default=True)
        m.flow(rep, rej_end)
        shapes += [dec, rep, rej_end]
    else:
        join.x, join.y = ut.right + GAP + 20, auto.y
        m.flow(ut, join)
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
