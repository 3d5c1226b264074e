CREATE TABLE never_reached (id int);
