"""Operator commands for members: staff, points adjustments and approvals, coupons, benefits, and
the WeChat member card. Each writes in one transaction, prints the outcome, and exits non-zero with
the reason when the rules refuse (click.ClickException)."""
from __future__ import annotations

from datetime import date

import click
from flask import Flask
from sqlalchemy import select


def _staff(username: str):
    from members.models import Staff
    from wx_service.ground.extensions import db

    staff = db.session.scalar(select(Staff).where(Staff.username == username))
    if staff is None or not staff.active:
        raise click.ClickException(f"no active staff member {username!r} (add one with `staff add`)")
    return staff


def _pending(adjustment_id: int) -> None:
    """Approving or rejecting twice is refused here (the service returns a decided one as it is)."""
    from members.models import PointsAdjustment
    from wx_service.ground.extensions import db

    adjustment = db.session.get(PointsAdjustment, adjustment_id)
    if adjustment is not None and adjustment.status != "pending":
        raise click.ClickException(f"adjustment {adjustment_id} is {adjustment.status}, not pending")



def push_card() -> str:
    """Create the card once, then keep WeChat's copy equal to config/member_card.json.

    Two transactions: the card_id is stored as soon as card/create returns it, so a failure while
    setting the form leaves a card the next run finishes, never a second card."""
    from members import jobs
    from wx_service.ground.extensions import db

    with db.unit_of_work():
        created = jobs.create_card_if_missing()
    with db.unit_of_work():
        return jobs.bring_card_up_to_date(just_created=created)


def register(app: Flask) -> None:
    """Adds the members' commands to `app.cli`."""
    from members.exceptions import MembershipError

    def uow():
        return app.extensions["wx"].db.unit_of_work()

    def refused(exc: Exception) -> click.ClickException:
        return click.ClickException(f"refused: {exc}")

    @app.cli.group("staff")
    def staff_group() -> None:
        """Store staff who adjust points and redeem coupons."""

    @staff_group.command("add")
    @click.argument("username")
    @click.argument("name")
    @click.option("--staff", "by_username", default=None,
                  help="Who adds them (for the audit log; without it the entry says `cli`).")
    def staff_add(username: str, name: str, by_username: str | None) -> None:
        """Add a staff member (no role, no password yet: set one with `staff password`)."""
        from members import staff as staff_service

        try:
            with uow():
                by = _staff(by_username).id if by_username else None
                staff_service.add_staff(username, name, by_staff_id=by)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc.args[0]))
        click.echo(f"staff {username} ({name}) added")

    @staff_group.command("password")
    @click.argument("username")
    @click.password_option(help="The new console password (prompted twice when not given).")
    def staff_password(username: str, password: str) -> None:
        """Set a staff member's console sign-in password (their open console sessions end)."""
        from members import staff as staff_service

        try:
            with uow():
                staff_service.set_password(username, password)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc.args[0]))
        click.echo(f"password set for {username}")

    @staff_group.command("deactivate")
    @click.argument("username")
    @click.option("--staff", "by_username", default=None,
                  help="Who deactivates them (for the audit log; without it the entry says `cli`).")
    def staff_deactivate(username: str, by_username: str | None) -> None:
        """Stop a staff member signing in; their open console sessions end at their next request."""
        from members import staff as staff_service
        from service_desk import roster

        try:
            with uow():
                by = _staff(by_username).id if by_username else None
                changed = staff_service.deactivate(username, by_staff_id=by)
                roster.stand_down(staff_service.get_staff(username).id)  # the desk offers them nothing more
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc.args[0]))
        click.echo(f"{username} deactivated" if changed else f"{username} was already deactivated")

    @staff_group.command("activate")
    @click.argument("username")
    @click.option("--staff", "by_username", default=None,
                  help="Who reactivates them (for the audit log; without it the entry says `cli`).")
    def staff_activate(username: str, by_username: str | None) -> None:
        """Let a deactivated staff member sign in again."""
        from members import staff as staff_service

        try:
            with uow():
                by = _staff(by_username).id if by_username else None
                changed = staff_service.activate(username, by_staff_id=by)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc.args[0]))
        click.echo(f"{username} reactivated" if changed else f"{username} was already active")

    from members.staff import ROLES

    def describe(role: str, counter_code: str) -> str:
        return {"counter": f"counter of {counter_code}", "admin": "admin (everything, every counter)"}.get(role, role)

    @staff_group.command("grant-role")
    @click.argument("username")
    @click.argument("role", type=click.Choice(ROLES))
    @click.option("--counter", "counter_code", default="", help="The counter's code (the counter role names one).")
    @click.option("--staff", "by_username", default=None,
                  help="Who grants it (for the audit log; without it the entry says `cli`).")
    def staff_grant_role(username: str, role: str, counter_code: str, by_username: str | None) -> None:
        """Give a staff member a console role: admin (everything), counter (one counter's
        reservations and till, with --counter CODE), cashier, agent (prefer `desk agent-add`, which
        also puts them in a team), marketing, analyst. Idempotent."""
        from members import staff as staff_service

        try:
            with uow():
                by = _staff(by_username).id if by_username else None
                staff_service.grant_role(username, role, counter_code.strip(), by_staff_id=by)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc.args[0]))
        click.echo(f"{username}: {describe(role, counter_code.strip())}")

    @staff_group.command("revoke-role")
    @click.argument("username")
    @click.argument("role", type=click.Choice(ROLES))
    @click.option("--counter", "counter_code", default="",
                  help="For the counter role: only this counter's (default: every counter's).")
    @click.option("--staff", "by_username", default=None,
                  help="Who revokes it (for the audit log; without it the entry says `cli`).")
    def staff_revoke_role(username: str, role: str, counter_code: str, by_username: str | None) -> None:
        """Take a console role away (revoking one not held changes nothing and says so)."""
        from members import staff as staff_service
        from service_desk import roster

        try:
            with uow():
                by = _staff(by_username).id if by_username else None
                removed = staff_service.revoke_role(username, role, counter_code.strip(), by_staff_id=by)
                if removed and role == staff_service.AGENT:
                    roster.stand_down(staff_service.get_staff(username).id)
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc.args[0]))
        click.echo(f"{username}: {role} revoked ({removed} grant{'s' if removed != 1 else ''})" if removed
                   else f"{username} did not hold {role}" + (f" of {counter_code.strip()}" if counter_code else ""))

    @staff_group.command("roles")
    @click.argument("username")
    def staff_roles(username: str) -> None:
        """The console roles a staff member holds, one a line."""
        from members import staff as staff_service

        with uow():
            staff = staff_service.get_staff(username)
            if staff is None:
                raise click.ClickException(f"no staff member {username!r}")
            grants = staff_service.grants_of(staff.id)
            active = staff.active
        if not grants:
            click.echo(f"{username}: no roles (signs in to the console's home page only)")
        for role, code in grants:
            click.echo(f"{username}: {describe(role, code)}")
        if not active:
            click.echo(f"{username} is deactivated: no role applies until reactivated")

    @app.cli.group("points")
    def points_group() -> None:
        """Staff adjustments of a member's points."""

    @points_group.command("adjust", context_settings={"ignore_unknown_options": True})
    @click.argument("member_id", type=int)
    @click.argument("delta", type=int)
    @click.option("--reason", required=True, help="Why (kept in the ledger).")
    @click.option("--staff", "username", required=True)
    def points_adjust(member_id: int, delta: int, reason: str, username: str) -> None:
        """Adjust by DELTA (negative to take away); above the limit it waits for approval."""
        from members import points

        try:
            with uow():
                adjustment = points.request_adjustment(member_id, delta, reason, _staff(username).id)
                outcome = (f"adjustment {adjustment.id} applied: {delta:+d} points"
                           if adjustment.status == "applied" else
                           f"adjustment {adjustment.id} pending: {delta:+d} points needs another staff "
                           f"member's approval (`points approve {adjustment.id} --staff ...`)")
        except (MembershipError, ValueError) as exc:
            raise refused(exc) from exc
        click.echo(outcome)

    @points_group.command("approve")
    @click.argument("adjustment_id", type=int)
    @click.option("--staff", "username", required=True)
    def points_approve(adjustment_id: int, username: str) -> None:
        from members import points

        try:
            with uow():
                _pending(adjustment_id)
                points.approve_adjustment(adjustment_id, _staff(username).id)
        except MembershipError as exc:
            raise refused(exc) from exc
        click.echo(f"adjustment {adjustment_id} approved and applied")

    @points_group.command("reject")
    @click.argument("adjustment_id", type=int)
    @click.option("--staff", "username", required=True)
    def points_reject(adjustment_id: int, username: str) -> None:
        from members import points

        try:
            with uow():
                _pending(adjustment_id)
                points.reject_adjustment(adjustment_id, _staff(username).id)
        except MembershipError as exc:
            raise refused(exc) from exc
        click.echo(f"adjustment {adjustment_id} rejected")

    @app.cli.group("coupon")
    def coupon_group() -> None:
        """Benefit coupons at the counter."""

    @coupon_group.command("redeem")
    @click.argument("code")
    @click.option("--staff", "username", required=True)
    def coupon_redeem(code: str, username: str) -> None:
        from marketing import service as marketing

        try:
            with uow():
                coupon = marketing.redeem_coupon(code, _staff(username).id)
                text = f"coupon redeemed: {coupon.title}, {coupon.value_fen / 100:.2f} yuan, member {coupon.member_id}"
        except MembershipError as exc:
            raise refused(exc) from exc
        click.echo(text)

    @app.cli.group("benefits")
    def benefits_group() -> None:
        """Birthday and anniversary coupons."""

    @benefits_group.command("run")
    @click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
                  help="The store day (default: today in Asia/Shanghai).")
    def benefits_run(day) -> None:
        """Run the daily benefit job now (safe to repeat: once a year per member and kind)."""
        from members import benefits

        run_day: date = day.date() if day else benefits.store_today()
        with uow():
            grants = benefits.grant_birthday_and_anniversary(run_day)
            lines = [f"member {g.member_id}: {g.kind} coupon {'issued' if g.new else 'already issued'}"
                     + (", greeting queued" if g.greeted else "") for g in grants]
        for line in lines:
            click.echo(line)
        click.echo(f"{run_day}: {sum(g.new for g in grants)} coupons issued, "
                   f"{sum(not g.new for g in grants)} already issued")
        queue = app.extensions["wx"].queue
        if hasattr(queue, "wait_idle"):
            queue.wait_idle(timeout=30)  # in-process: let the greetings go out before exiting

    @app.cli.group("card")
    def card_group() -> None:
        """The WeChat member card."""

    @card_group.command("push")
    def card_push() -> None:
        """Create the member card on WeChat, or update it when config/member_card.json changed."""
        try:
            click.echo(push_card())
        except Exception as exc:
            raise click.ClickException(f"card push failed: {exc}") from exc
