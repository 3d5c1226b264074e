-- Undoes V3_013: users' settings, filters, dashboards, schedules, activity and feedback
-- are lost (a backup taken before the release has them).
DROP TABLE feedback_tickets;
DROP TABLE user_activity_log;
DROP TABLE report_runs;
DROP TABLE report_schedules;
DROP TABLE custom_dashboards;
DROP TABLE notification_preferences;
DROP TABLE saved_filters;
DROP TABLE user_preferences;
