"""The FAQ chain (questions -> answers -> sources, `chain`) and one stored run (`runs`)."""
