"""Steps of ``bench/city_seed.py`` done from Python: the notification texts, the organisers and
staff, the id sequences, and the roll-up rebuild in processes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

ZONE = ZoneInfo("Asia/Shanghai")


def notification_texts(connection: sa.Connection, first_day: date, days: int, slots: list[tuple[int, int]]) -> None:
    """``city_texts``: each notification's title and body as notifications.texts renders them in
    zh, per day, slot, role and reminder lead; the grid's name is put in by the SQL."""
    from flask import current_app

    from notifications import texts

    rows = []
    for dd in range(days):
        for s, (hour, _minutes) in enumerate(slots):
            local = datetime.combine(first_day + timedelta(days=dd), datetime.min.time(), ZONE).replace(hour=hour)
            for role in ("primary", "backup"):
                params = {"shift_title": "网格巡逻", "grid_name": "@@GRID@@", "starts_at": local.astimezone(UTC),
                          "timezone": "Asia/Shanghai", "role": role}
                title, body = texts.render("assignment_created", "zh", params)
                rows.append({"kind": "assignment_created", "dd": dd, "s": s, "role": role, "lead": 0,
                             "title": title, "body": body})
                for lead in current_app.config["REMINDER_OFFSETS_MINUTES"]:
                    title, body = texts.render("shift_reminder", "zh", {**params, "minutes_before": lead})
                    rows.append({"kind": "shift_reminder", "dd": dd, "s": s, "role": role, "lead": lead,
                                 "title": title, "body": body})
    connection.execute(sa.text(
        "CREATE TEMP TABLE city_texts (kind text, dd int, s int, role text, lead int, title text, body text)"
    ))
    connection.execute(sa.text(
        "INSERT INTO city_texts VALUES (:kind, :dd, :s, :role, :lead, :title, :body)"
    ), rows)


def managers(connection: sa.Connection, params: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """An organiser per street and per community, staff per district and one for the city."""
    first = connection.execute(sa.text("SELECT coalesce(max(id), 0) + 1 FROM users")).scalar_one()
    connection.execute(sa.text(
        "INSERT INTO users (id, phone, password_hash, role, display_name, area_id, locale, is_active, created_at, "
        "updated_at, password_changed_at) "
        "SELECT :first + row_number() OVER (ORDER BY level <> 'city', level <> 'district', id) - 1, "
        "'+86135' || lpad((row_number() OVER (ORDER BY level <> 'city', level <> 'district', id))::text, 8, '0'), "
        ":hash, CASE WHEN level IN ('city', 'district') THEN 'staff' ELSE 'organiser' END, "
        "name || CASE WHEN level IN ('city', 'district') THEN '平安办' ELSE '组织者' END, id, 'zh', true, "
        ":first_at, :now, :first_at FROM areas WHERE level <> 'grid'"
    ), {**params, "first": first})
    found: dict[str, list[dict[str, Any]]] = {"staff": [], "organisers": []}
    for user_id, phone, role, area_id, level, path, name in connection.execute(sa.text(
        "SELECT u.id, u.phone, u.role, a.id, a.level, a.path, a.name FROM users u JOIN areas a ON a.id = u.area_id "
        "WHERE u.id >= :first ORDER BY u.id"
    ), {"first": first}):
        entry = {"id": user_id, "phone": phone, "area_id": area_id, "level": level, "path": path, "name": name}
        found["staff" if role == "staff" else "organisers"].append(entry)
    return found


def _rebuild_district(district_id: int) -> tuple[int, dict[str, int]]:
    """Child process: the roll-ups of one district's grids and home volunteers, by the app's rebuild
    (DATABASE_URL and INSTANCE_PATH come with the environment)."""
    from app import create_app
    from core.extensions import db
    from reports.rollups.cli import rebuild

    app = create_app()
    with app.app_context():
        counts = rebuild(district_id)
        db.session.remove()
        db.engine.dispose()
    return district_id, counts


def rebuild_rollups(jobs: int, bar: Any) -> dict[str, int]:
    """The report roll-ups rebuilt district by district in ``jobs`` processes (each commits grid by
    grid; districts share no grid and no volunteer), biggest districts first; the counts summed."""
    import multiprocessing

    from core.extensions import db

    districts = db.session.execute(sa.text(
        "SELECT d.id, count(g.id) FROM areas d JOIN areas g ON g.level = 'grid' AND g.path LIKE d.path || '%' "
        "WHERE d.level = 'district' GROUP BY d.id ORDER BY 2 DESC"
    )).tuples().all()
    sizes = dict(districts)
    db.session.commit()
    totals = {"grids": 0, "days": 0, "volunteer_months": 0}
    with multiprocessing.get_context("spawn").Pool(jobs) as pool:
        for district_id, counts in pool.imap_unordered(_rebuild_district, [d for d, _ in districts]):
            bar.update(sizes[district_id])
            for key in totals:
                totals[key] += counts[key]
    return totals


def set_sequences(connection: sa.Connection) -> None:
    for table in ("areas", "users", "volunteers", "devices", "shifts", "shift_assignments", "patrols",
                  "service_records", "ledger_entries", "patrol_reports", "patrol_report_events",
                  "volunteer_status_changes", "volunteer_badges", "notifications"):
        connection.execute(sa.text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), greatest((SELECT max(id) FROM {table}), 1))"
        ))
