"""Words that reach the pages as data (states, roles, targets, rules…): listed
here so that Babel extracts them into the catalogue, and the pages translate
them with `_(value)`. A value missing here is shown as it is (in English)."""

from __future__ import annotations

from fieldledger.api.console.i18n import N_

WORDS = (
    # roles
    N_("client_app"), N_("dispatcher"), N_("technician"), N_("supervisor"), N_("analyst"),
    N_("system"),
    # work order states
    N_("booked"), N_("assigned"), N_("confirmed"), N_("en_route"), N_("on_site"),
    N_("in_service"), N_("completed"), N_("accepted"), N_("on_hold"), N_("cancelled"),
    N_("resolved_remotely"),
    # complaint states
    N_("lodged"), N_("acknowledged"), N_("investigated"), N_("planned"), N_("resolved"),
    N_("closed"), N_("reopened"),
    # priorities, zones, severities, kinds
    N_("urgent"), N_("priority"), N_("routine"), N_("urban"), N_("suburban"), N_("minor"),
    N_("major"), N_("critical"), N_("staff"), N_("policy"),
    # SLA targets and statuses
    N_("response"), N_("arrival"), N_("resolution"), N_("acknowledgement"), N_("closure"),
    N_("met"), N_("breached"), N_("cancelled"), N_("waived"), N_("paused"), N_("pending"),
    # appraisal rules, discipline steps, conduct kinds, training
    N_("late_arrival"), N_("company_at_fault"), N_("praise"), N_("ratings"), N_("conduct"),
    N_("discipline_step"), N_("warning"), N_("demerit"), N_("dismissal_recommended"),
    N_("dismissal"), N_("uniform"), N_("grooming"), N_("posture"), N_("sleeping"),
    N_("personal_call"), N_("chatting"), N_("reading"), N_("absence"), N_("training"),
    N_("training_flags"), N_("retraining_required"),
)  # fmt: skip
