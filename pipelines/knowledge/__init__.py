"""The knowledge base of documents: passages split along each document's structure
(`passages`), kept and replaced by version (`library`), and searched (`retrieval`)."""
