-- Prix en € et café: non-ASCII text, and a 4-byte character 🚀
CREATE TABLE produits (
    nom text NOT NULL,
    prix numeric DEFAULT 9.99  -- trailing spaces and a tab	
);

INSERT INTO produits (nom) VALUES ('crème brûlée');