'use strict';
// Express 5 with sessions in this worker's memory (express-session's MemoryStore).
// Every request of a client must reach the worker that created its session.
const express = require('express');
const session = require('express-session');

const app = express();
app.use(
  session({
    name: 'sid',
    secret: process.env.SESSION_SECRET || 'example only: set SESSION_SECRET',
    resave: false,
    saveUninitialized: false,
  }),
);

app.post('/login', (req, res) => {
  req.session.user = String(req.query.user || 'anonymous');
  req.session.views = 0;
  res.json({ user: req.session.user, pid: process.pid });
});

app.get('/me', (req, res) => {
  if (!req.session.user) return res.status(401).json({ error: 'no session on this worker', pid: process.pid });
  req.session.views += 1;
  res.json({ user: req.session.user, views: req.session.views, pid: process.pid });
});

// A request listener: the balancer's worker runtime serves it.
module.exports = app;
