'use strict';
// Fastify 5 with @fastify/session in this worker's memory. Exported as a factory
// (a function of no arguments): the runtime calls it and serves the server it returns.
const Fastify = require('fastify');

module.exports = async () => {
  const app = Fastify();
  await app.register(require('@fastify/cookie'));
  await app.register(require('@fastify/session'), {
    cookieName: 'sid',
    secret: process.env.SESSION_SECRET || 'example only: set SESSION_SECRET, 32+ chars',
    cookie: { secure: false },
    saveUninitialized: false,
  });
  app.post('/login', async (req) => {
    req.session.set('user', String(req.query.user || 'anonymous'));
    req.session.set('views', 0);
    return { user: req.session.get('user'), pid: process.pid };
  });
  app.get('/me', async (req, reply) => {
    const user = req.session.get('user');
    if (!user) return reply.code(401).send({ error: 'no session on this worker', pid: process.pid });
    req.session.set('views', req.session.get('views') + 1);
    return { user, views: req.session.get('views'), pid: process.pid };
  });
  await app.ready();
  // Not listening: the balancer hands this server its connections.
  return app.server;
};
