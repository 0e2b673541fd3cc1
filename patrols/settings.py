"""patrols' settings: presence, tracks, checkpoints (``core/config.py`` explains the table)."""

from __future__ import annotations

from core.config import Setting, integer, text

SETTINGS: tuple[Setting, ...] = (
    # Presence (check-in and check-out).
    integer("CHECK_IN_OPENS_MINUTES", 30, "check-in opens this long before the start"),
    integer(
        "CHECK_OUT_GRACE_MINUTES", 30,
        "served time runs at most this long past the end; a forgotten check-out closes then",
    ),
    integer(
        "CHECK_IN_MAX_ACCURACY_M", 100,
        "a position less accurate than this needs review; the geofence allows at most this much",
    ),
    integer(
        "CHECK_IN_CLOCK_SKEW_MINUTES", 5, "a device clock this far ahead of the server is flagged `device_time_future`"
    ),
    integer(
        "CHECK_IN_MAX_OFFLINE_HOURS", 72,
        "a device time further behind the server than this is flagged `clock_skew` (offline phones deliver late)",
    ),
    integer("NO_SHOW_AFTER_MINUTES", 15, "a primary without check-in this long after the start is marked absent"),
    integer("PRESENCE_TASKS_MINUTES", 5, "how often beat runs auto-close and no-shows"),
    # Tracks and checkpoints.
    integer("TRACK_MAX_BATCH", 1000, "track points per upload"),
    integer("TRACK_MAX_POINTS_PER_PATROL", 50_000, "track points kept per patrol"),
    integer("TRACK_RETENTION_DAYS", 90, "track points are purged this many days after their shift ends (PIPL art. 28)"),
    integer(
        "TRACK_PURGE_MINUTES", 60,
        "how often beat runs `patrols.enforce_retention` (tracks, presence and SOS positions past their retention)",
    ),
    integer("TRACK_MAX_SPEED_KMH", 150, "faster than this between two points is a GPS jump, left out of the distance"),
    integer(
        "PATROL_EVENT_SLACK_MINUTES", 60,
        "track points and scans are accepted from this long before the start to this long after the end",
    ),
    integer(
        "CHECKPOINT_MAX_OUTSIDE_M", 200, "checkpoints may stand this far outside their grid (a gate on the boundary)"
    ),
    integer(
        "CHECKPOINT_SCAN_RADIUS_M", 100,
        "a scan reported farther than this from its checkpoint (plus accuracy) is flagged",
    ),
    # SOS (patrols/sos).
    integer("SOS_ACK_MINUTES", 3, "an SOS nobody acknowledges within this long escalates (community → district → city)"),
    integer("SOS_RADIUS_M", 1000, "volunteers on duty within this distance of an SOS are alerted"),
    integer("SOS_ESCALATION_SECONDS", 30, "how often beat runs the SOS escalation"),
    integer("SOS_MAX_POSITIONS", 100, "positions per upload while an SOS is open"),
    integer("SOS_FALSE_ALARM_DAYS", 90, "cancelled SOS counted as false alarms over this many days"),
    # Location under PIPL (patrols/privacy): the separate consent and retention per kind.
    text("LOCATION_TERMS_VERSION", "2026-12", "version of the location-tracking terms a consent must name"),
    integer(
        "PRESENCE_POSITION_RETENTION_DAYS", 30,
        "precise check-in/out and scan positions are cleared this long after the shift ends, once presence is decided",
    ),
    integer("SOS_POSITION_RETENTION_DAYS", 180, "an SOS's positions are cleared this long after it ended"),
    text("CHECKPOINT_QR_KEY", None, "HMAC key of checkpoint QR payloads", shown_default="derived from `SECRET_KEY`"),
)
