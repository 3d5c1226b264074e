-- Undoes V3_010.
DROP FUNCTION upsert_jira_issue(text, text, text, timestamptz, text, text, bigint);
DROP TABLE jira_issues;
