-- Undoes V3_009.
DROP TABLE budget_allocations;
DROP FUNCTION budget_allocations_check_version();
