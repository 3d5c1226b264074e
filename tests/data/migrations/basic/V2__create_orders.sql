CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    note text DEFAULT 'no; note',
    total numeric(12, 2) NOT NULL DEFAULT 0
);

/* A function body is one statement: its semicolons don't split it. */
CREATE FUNCTION order_total(p_user bigint) RETURNS numeric AS $$
BEGIN
    RETURN (SELECT coalesce(sum(total), 0) FROM orders WHERE user_id = p_user);
END;
$$ LANGUAGE plpgsql;
